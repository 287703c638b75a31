"""Writing the dataset file from the cache's shards with bounded memory.

Each cache entry (a shard: one corpus file, or a batch of MIDI files) is a packed .npz (tunes.pack_tunes).
The dataset file has the same layout (notes, note_offsets, bars, bar_offsets, meta), so
`TuneDataset.load` and every consumer read it as before; here it is streamed: a first pass over the
shards counts tunes, notes and bars and writes the tunes' metadata to a temporary JSON file, then each
array is written into the .npz (a zip of .npy files) shard by shard. At no point does more than one
shard sit in memory, however many files the dataset holds.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .tunes import BAR_DTYPE, NOTE_DTYPE, read_meta


@dataclass
class ShardCounts:
    tunes: int = 0
    notes: int = 0
    bars: int = 0
    empty_tunes: int = 0


def _open(path: Path) -> dict[str, np.ndarray]:
    """The offsets and metadata of a shard (the large arrays are read later, one at a time)."""
    with np.load(path, allow_pickle=False) as stored:
        return {name: stored[name] for name in ("note_offsets", "bar_offsets", "meta")}


def _kept(note_offsets: np.ndarray) -> np.ndarray:
    """Indices of the tunes of a shard that have notes (tunes without notes are left out)."""
    return np.flatnonzero(np.diff(note_offsets) > 0)


def _npy_header(handle, dtype: np.dtype, count: int) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (count,)}
    np.lib.format.write_array_header_2_0(handle, header)


class EmptyDatasetError(Exception):
    """write_dataset found no tune to write (it writes nothing then, rather than an empty dataset)."""


def write_dataset(
    shards: Sequence[tuple[str, Path]],
    output: Path,
    extra: dict,
    on_meta: Callable[[int, dict], None] | None = None,
) -> ShardCounts:
    """Stream (genre, shard path) entries into the dataset .npz at `output` (atomically: a temporary
    file beside it, renamed). `on_meta(index, meta)` sees each shard's metadata (failures ...)."""
    counts = ShardCounts()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".build-") as scratch:
        tunes_json = Path(scratch) / "tunes.json"
        with open(tunes_json, "w", encoding="utf-8") as meta_out:
            for index, (genre, path) in enumerate(shards):
                packed = _open(path)
                meta = read_meta(packed)
                if on_meta is not None:
                    on_meta(index, meta)
                note_offsets, bar_offsets = packed["note_offsets"], packed["bar_offsets"]
                kept = _kept(note_offsets)
                counts.empty_tunes += len(meta["tunes"]) - kept.size
                for i in kept.tolist():
                    meta_out.write(", " if counts.tunes else "")
                    json.dump({**meta["tunes"][i], "genre": genre}, meta_out)
                    counts.tunes += 1
                    counts.notes += int(note_offsets[i + 1] - note_offsets[i])
                    counts.bars += int(bar_offsets[i + 1] - bar_offsets[i])
        if counts.tunes == 0:  # every file failed or held no notes: keep the last dataset
            raise EmptyDatasetError(f"no tunes to write: {output} was left as it was")
        head = b'{"tunes": ['
        tail = ("], " + json.dumps(extra)[1:]).encode("utf-8")
        temporary = output.with_name(f".{output.name}.tmp")
        try:
            with zipfile.ZipFile(temporary, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                _write_member(
                    archive, "notes", NOTE_DTYPE, counts.notes, _rows(shards, "notes", "note_offsets")
                )
                _write_member(
                    archive,
                    "note_offsets",
                    np.dtype(np.int64),
                    counts.tunes + 1,
                    _offsets(shards, "note_offsets"),
                )
                _write_member(archive, "bars", BAR_DTYPE, counts.bars, _rows(shards, "bars", "bar_offsets"))
                _write_member(
                    archive,
                    "bar_offsets",
                    np.dtype(np.int64),
                    counts.tunes + 1,
                    _offsets(shards, "bar_offsets"),
                )
                size = len(head) + tunes_json.stat().st_size + len(tail)
                with archive.open("meta.npy", "w", force_zip64=True) as member:
                    _npy_header(member, np.dtype(np.uint8), size)
                    member.write(head)
                    with open(tunes_json, "rb") as source:
                        shutil.copyfileobj(source, member)
                    member.write(tail)
            os.replace(temporary, output)
        finally:
            temporary.unlink(missing_ok=True)
    return counts


def _write_member(
    archive: zipfile.ZipFile, name: str, dtype: np.dtype, count: int, chunks: Iterator[np.ndarray]
):
    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
        _npy_header(member, dtype, count)
        written = 0
        for chunk in chunks:
            member.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())
            written += chunk.size
        if written != count:
            raise RuntimeError(
                f"the cache changed while the dataset was written ({name}: {written} != {count})"
            )


def _rows(shards: Sequence[tuple[str, Path]], name: str, offsets_name: str) -> Iterator[np.ndarray]:
    """The rows (notes or bars) of the kept tunes, shard by shard."""
    for _genre, path in shards:
        with np.load(path, allow_pickle=False) as stored:
            rows, offsets, note_offsets = stored[name], stored[offsets_name], stored["note_offsets"]
        for i in _kept(note_offsets).tolist():
            yield rows[offsets[i] : offsets[i + 1]]


def _offsets(shards: Sequence[tuple[str, Path]], offsets_name: str) -> Iterator[np.ndarray]:
    """Running offsets over the kept tunes (starting with 0)."""
    total = 0
    yield np.zeros(1, np.int64)
    for _genre, path in shards:
        with np.load(path, allow_pickle=False) as stored:
            offsets, note_offsets = stored[offsets_name], stored["note_offsets"]
        kept = _kept(note_offsets)
        sizes = (offsets[kept + 1] - offsets[kept]).astype(np.int64)
        yield total + np.cumsum(sizes)
        total += int(sizes.sum())
