"""A tune record (notes in beats, bar grid, key, tempo, source) and its packed array form.

A tune's notes are a numpy structured array (NOTE_DTYPE) sorted by (start, pitch); its bars are a
structured array (BAR_DTYPE) of the measures as written: start beat, actual length and meter. A bar
is *complete* when its length equals its meter's length (pickups and cut final bars are not), and
windows are cut only from runs of complete bars of one meter.

Many tunes pack into flat arrays plus offsets (`pack_tunes` / `unpack_tunes`): the layout of both the
per-file cache and the final dataset file, loadable with `np.load(..., allow_pickle=False)`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from musebridge.core.music import Meter, Note

NOTE_DTYPE = np.dtype([("pitch", "u1"), ("velocity", "u1"), ("start", "f8"), ("duration", "f4")])
BAR_DTYPE = np.dtype([("start", "f8"), ("length", "f4"), ("numerator", "u1"), ("denominator", "u1")])
DEFAULT_VELOCITY = 80  # corpus scores carry no dynamics; MIDI files keep their own velocities
_BAR_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Tune:
    """One tune (one movement, one song): everything a model pipeline needs, in beats."""

    source_id: str  # stable across machines, e.g. "essenFolksong/altdeu10.abc#12"; the split hashes it
    collection: str  # "essenFolksong", or the user's MIDI folder label
    genre: str = ""
    title: str = ""
    key: str = ""  # e.g. "G major"; "" when the source does not say
    tempo_bpm: float | None = None  # quarter notes per minute, when the source says
    notes: np.ndarray = field(default_factory=lambda: np.zeros(0, NOTE_DTYPE))
    bars: np.ndarray = field(default_factory=lambda: np.zeros(0, BAR_DTYPE))

    @property
    def meters(self) -> list[str]:
        """Distinct meters in order of appearance, e.g. ["6/8", "9/8"]."""
        seen: dict[str, None] = {}
        for bar in self.bars:
            seen[f"{bar['numerator']}/{bar['denominator']}"] = None
        return list(seen)

    def note_objects(self) -> list[Note]:
        """The notes as musebridge Note objects."""
        return [
            Note(int(n["pitch"]), int(n["velocity"]), float(n["start"]), float(n["duration"]))
            for n in self.notes
        ]

    def note_array_between(self, start: float, length: float) -> np.ndarray:
        """NOTE_DTYPE rows with an onset in [start, start + length), times unchanged (absolute beats)."""
        lo = np.searchsorted(self.notes["start"], start - 1e-6)
        hi = np.searchsorted(self.notes["start"], start + length - 1e-6)
        return self.notes[lo:hi]

    def note_objects_between(self, start: float, length: float) -> list[Note]:
        """Notes with an onset in [start, start + length), times unchanged (absolute beats)."""
        return [
            Note(int(n["pitch"]), int(n["velocity"]), float(n["start"]), float(n["duration"]))
            for n in self.note_array_between(start, length)
        ]

    def with_genre(self, genre: str) -> Tune:
        return replace(self, genre=genre)


def make_notes(rows: Sequence[tuple[int, int, float, float]]) -> np.ndarray:
    """NOTE_DTYPE array from (pitch, velocity, start, duration) rows, sorted; zero-length notes dropped."""
    array = np.array([r for r in rows if r[3] > 0], dtype=NOTE_DTYPE)
    if array.size == 0:
        return np.zeros(0, NOTE_DTYPE)
    if array["pitch"].max() > 127 or array["velocity"].min() < 1 or array["velocity"].max() > 127:
        raise ValueError("note pitch must be 0..127 and velocity 1..127")
    return array[np.lexsort((array["pitch"], array["start"]))]


def make_bars(rows: Sequence[tuple[float, float, int, int]]) -> np.ndarray:
    """BAR_DTYPE array from (start, length, numerator, denominator) rows, sorted by start."""
    array = np.array(list(rows), dtype=BAR_DTYPE)
    return array[np.argsort(array["start"], kind="stable")] if array.size else np.zeros(0, BAR_DTYPE)


def regular_bars(total_beats: float, changes: Sequence[tuple[float, Meter]]) -> np.ndarray:
    """A bar grid from meter changes (beat, meter) up to `total_beats` (for MIDI files), as BAR_DTYPE.

    The rule is musebridge.smf.bar_grid (the one the offline commands use): a change inside a bar cuts
    that bar short (it is then incomplete); with no change at beat 0, 4/4 from 0 (the MIDI default).
    """
    from musebridge.smf.score import bar_grid

    grid = bar_grid(total_beats, list(changes))
    return make_bars([(start, length, m.numerator, m.denominator) for start, length, m in grid])


def complete_bars(bars: np.ndarray) -> np.ndarray:
    """Boolean mask of bars whose length equals their meter's length."""
    full = bars["numerator"].astype(np.float64) * 4.0 / bars["denominator"]
    return np.abs(bars["length"] - full) < _BAR_TOLERANCE


def _meta(tune: Tune) -> dict:
    return {
        "source_id": tune.source_id,
        "collection": tune.collection,
        "genre": tune.genre,
        "title": tune.title,
        "key": tune.key,
        "tempo_bpm": tune.tempo_bpm,
    }


def pack_tunes(tunes: Sequence[Tune], extra: dict | None = None) -> dict[str, np.ndarray]:
    """Flat arrays for np.savez: notes, note_offsets, bars, bar_offsets and a JSON metadata blob."""
    note_offsets = np.zeros(len(tunes) + 1, dtype=np.int64)
    bar_offsets = np.zeros(len(tunes) + 1, dtype=np.int64)
    note_offsets[1:] = np.cumsum([t.notes.size for t in tunes])
    bar_offsets[1:] = np.cumsum([t.bars.size for t in tunes])
    meta = {"tunes": [_meta(t) for t in tunes], **(extra or {})}
    return {
        "notes": np.concatenate([t.notes for t in tunes]) if tunes else np.zeros(0, NOTE_DTYPE),
        "note_offsets": note_offsets,
        "bars": np.concatenate([t.bars for t in tunes]) if tunes else np.zeros(0, BAR_DTYPE),
        "bar_offsets": bar_offsets,
        "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
    }


def read_meta(packed: dict[str, np.ndarray]) -> dict:
    """The JSON metadata of a packed set of tunes."""
    return json.loads(bytes(np.asarray(packed["meta"], dtype=np.uint8)).decode("utf-8"))


def unpack_tunes(packed: dict[str, np.ndarray]) -> list[Tune]:
    """The tunes back from `pack_tunes` arrays (or an opened .npz)."""
    meta = read_meta(packed)
    notes, bars = packed["notes"], packed["bars"]
    note_offsets, bar_offsets = packed["note_offsets"], packed["bar_offsets"]
    tunes = []
    for i, info in enumerate(meta["tunes"]):
        tunes.append(
            Tune(
                notes=notes[note_offsets[i] : note_offsets[i + 1]],
                bars=bars[bar_offsets[i] : bar_offsets[i + 1]],
                **info,
            )
        )
    return tunes
