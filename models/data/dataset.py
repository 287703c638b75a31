"""Loading a built dataset, the train/valid/test split by tune, and bar-aligned windows.

Split: sha1 of the tune's source id -> a number 0..99; < 80 train, < 90 valid, else test. The split
is a property of the tune, so windows (cut later, per split) never leak a tune across splits, and a
tune keeps its split when the corpus grows.

Windows: `n` consecutive complete bars of one meter (pickups, cut bars and meter changes break a
run), starting every `hop` bars from the start of each run; windows holding fewer than `min_notes`
note onsets are skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from musebridge.core.music import Meter, Note, Phrase

from .build import DATASET_NAME, default_cache_dir
from .tunes import Tune, complete_bars, read_meta, unpack_tunes

SPLITS = ("train", "valid", "test")
SPLIT_PERCENT = {"train": 80, "valid": 10, "test": 10}


def split_of(source_id: str) -> str:
    """"train", "valid" or "test" for a tune, stable across machines and builds (80/10/10)."""
    bucket = int.from_bytes(hashlib.sha1(source_id.encode("utf-8")).digest()[:8], "big") % 100
    if bucket < SPLIT_PERCENT["train"]:
        return "train"
    return "valid" if bucket < SPLIT_PERCENT["train"] + SPLIT_PERCENT["valid"] else "test"


@dataclass(frozen=True)
class Window:
    """`bars` bars of one tune from bar `bar_index` on, starting at `start` beats, all in `meter`."""

    tune_index: int
    bar_index: int
    bars: int
    meter: Meter
    start: float

    @property
    def length_beats(self) -> float:
        return self.bars * self.meter.beats_per_bar


def tune_windows(
    tune: Tune,
    bars: int,
    hop_bars: int = 1,
    min_notes: int = 1,
    meter: Meter | None = None,
    regroup: bool = False,
) -> list[tuple[int, float, Meter]]:
    """(bar_index, start_beat, meter) of every window of `bars` complete bars of one meter in a tune.

    meter=None keeps every meter; a meter keeps runs of that meter only, and with regroup=True also
    runs of a meter whose bar is a power-of-two multiple or fraction of it (2/4, 2/2, 4/2, 4/1 for 4/4),
    re-cut into bars of `meter` from the run's first bar line (so one 4/2 bar gives two 4/4 bars).
    bar_index is the written bar the window starts in.
    """
    if bars < 1 or hop_bars < 1:
        raise ValueError("window bars and hop must be >= 1")
    grid = tune.bars
    full = complete_bars(grid)
    starts = tune.notes["start"]
    found: list[tuple[int, float, Meter]] = []
    for first, stop in _runs(grid, full):
        run_meter = Meter(int(grid[first]["numerator"]), int(grid[first]["denominator"]))
        target = meter or run_meter
        ratio = run_meter.beats_per_bar / target.beats_per_bar
        if run_meter != target and not (regroup and _power_of_two(ratio)):
            continue
        run_begin = float(grid[first]["start"])
        virtual_bars = int((stop - first) * ratio + 1e-9)
        for k in range(0, virtual_bars - bars + 1, hop_bars):
            begin = run_begin + k * target.beats_per_bar
            end = begin + bars * target.beats_per_bar
            onsets = np.searchsorted(starts, end - 1e-6) - np.searchsorted(starts, begin - 1e-6)
            if onsets >= min_notes:
                found.append((first + int(k / ratio + 1e-9), begin, target))
    return found


def _power_of_two(ratio: float) -> bool:
    exponent = np.log2(ratio)
    return abs(exponent - round(exponent)) < 1e-9 and abs(exponent) <= 4


def _runs(grid: np.ndarray, full: np.ndarray) -> list[tuple[int, int]]:
    """[first, stop) ranges of contiguous complete bars of one meter."""
    if grid.size == 0:
        return []
    continues = np.zeros(grid.size, dtype=bool)  # bar i carries on the run of bar i - 1
    continues[1:] = (
        full[:-1]
        & (grid["numerator"][1:] == grid["numerator"][:-1])
        & (grid["denominator"][1:] == grid["denominator"][:-1])
        & (np.abs(grid["start"][:-1] + grid["length"][:-1] - grid["start"][1:]) < 1e-4)
    )
    firsts = np.flatnonzero(full & ~continues)
    breaks = np.flatnonzero(~full | ~continues)
    after = np.searchsorted(breaks, firsts, side="right")  # the next break after each run's first bar
    stops = np.where(after < breaks.size, breaks[np.minimum(after, breaks.size - 1)], grid.size)
    return list(zip(firsts.tolist(), stops.tolist(), strict=True))


class TuneDataset:
    """A built dataset: tunes with genre and split, and windows cut from them."""

    def __init__(self, tunes: list[Tune], info: dict | None = None, path: Path | None = None):
        self.tunes = tunes
        self.info = info or {}
        self.path = path
        self.splits = [split_of(t.source_id) for t in tunes]

    @classmethod
    def load(cls, path: Path | None = None) -> TuneDataset:
        """Open a dataset .npz (default: <cache>/dataset.npz); ValueError with a hint if it is missing."""
        path = Path(path).expanduser() if path is not None else default_cache_dir() / DATASET_NAME
        if path.is_dir():
            path = path / DATASET_NAME
        if not path.exists():
            raise ValueError(f"no dataset at {path}; run `musebridge data build` first")
        with np.load(path, allow_pickle=False) as stored:
            packed = {name: stored[name] for name in stored.files}
        info = {k: v for k, v in read_meta(packed).items() if k != "tunes"}
        return cls(unpack_tunes(packed), info, path)

    @cached_property
    def genres(self) -> tuple[str, ...]:
        """Genre names present, sorted (the index order used by the window helpers)."""
        return tuple(sorted({t.genre for t in self.tunes}))

    @cached_property
    def out_of_domain(self) -> tuple[str, ...]:
        """Held-out genres (genres.yaml `out_of_domain: true`) present in this dataset, sorted."""
        return tuple(g for g in self.genres if g in set(self.info.get("out_of_domain", ())))

    @property
    def in_domain(self) -> tuple[str, ...]:
        """The genres that may be trained on (all but the held-out ones), sorted."""
        return tuple(g for g in self.genres if g not in self.out_of_domain)

    @property
    def polyphonic(self) -> tuple[str, ...]:
        """In-domain genres that keep all parts (not genres.yaml `voice: top` copies), sorted: the
        default mixed set of a CycleGAN "full" model."""
        top = set(self.info.get("top_voice", ()))
        return tuple(g for g in self.in_domain if g not in top)

    def __len__(self) -> int:
        return len(self.tunes)

    def indices(self, genres: Iterable[str] | None = None, split: str | None = None) -> list[int]:
        """Indices of the tunes in the given genres (all if None) and split (all if None).

        The train and valid splits never hold a held-out genre: genres=None leaves them out there, and
        naming one raises ValueError (they are measured whole, split=None, or on their test split).
        """
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        wanted = set(genres) if genres is not None else None
        if wanted is not None and wanted - set(self.genres):
            missing = ", ".join(sorted(wanted - set(self.genres)))
            raise ValueError(f"genre(s) {missing} not in this dataset (it has {', '.join(self.genres)})")
        if split in ("train", "valid"):
            if wanted is None:
                wanted = set(self.in_domain)
            elif wanted & set(self.out_of_domain):
                held = ", ".join(sorted(wanted & set(self.out_of_domain)))
                raise ValueError(
                    f"genre(s) {held} are held out (out of domain): never used for training or model "
                    "selection; evaluate them with `musebridge eval` instead"
                )
        return [
            i
            for i, tune in enumerate(self.tunes)
            if (wanted is None or tune.genre in wanted) and (split is None or self.splits[i] == split)
        ]

    def windows(
        self,
        bars: int,
        split: str | None = None,
        genres: Iterable[str] | None = None,
        meter: Meter | None = None,
        hop_bars: int = 1,
        min_notes: int = 1,
        regroup: bool = False,
    ) -> list[Window]:
        """Every window of `bars` bars in the selected tunes (see tune_windows for meter / regroup)."""
        out = []
        for index in self.indices(genres, split):
            found = tune_windows(self.tunes[index], bars, hop_bars, min_notes, meter, regroup)
            out += [Window(index, bar_index, bars, m, start) for bar_index, start, m in found]
        return out

    def window_notes(self, window: Window) -> list[Note]:
        """Notes starting inside the window, starts relative to its downbeat, cut at its end."""
        notes = self.tunes[window.tune_index].notes
        begin, length = window.start, window.length_beats
        lo = np.searchsorted(notes["start"], begin - 1e-6)
        hi = np.searchsorted(notes["start"], begin + length - 1e-6)
        out = []
        for row in notes[lo:hi]:
            start = float(row["start"]) - begin
            duration = min(float(row["duration"]), length - start)
            if duration > 1e-6:
                out.append(Note(int(row["pitch"]), int(row["velocity"]), max(start, 0.0), duration))
        return out

    def window_phrase(self, window: Window) -> Phrase:
        """The window as a Phrase (its own meter and bar count)."""
        return Phrase(notes=tuple(self.window_notes(window)), bars=window.bars, meter=window.meter)

    def summary(self, window_bars: Sequence[int] = (2, 4)) -> dict[str, dict[str, dict[str, int]]]:
        """{genre: {split: {"tunes", "notes", "windows_<n>bar" ...}}} for `musebridge data info`."""
        table: dict[str, dict[str, dict[str, int]]] = {}
        for index, tune in enumerate(self.tunes):
            row = table.setdefault(tune.genre, {}).setdefault(self.splits[index], {})
            row["tunes"] = row.get("tunes", 0) + 1
            row["notes"] = row.get("notes", 0) + int(tune.notes.size)
            for n in window_bars:
                key = f"windows_{n}bar"
                row[key] = row.get(key, 0) + len(tune_windows(tune, n, hop_bars=1))
        return table

    def meter_counts(self) -> dict[str, int]:
        """How many complete bars of each meter the dataset holds."""
        counts: dict[str, int] = {}
        for tune in self.tunes:
            full = complete_bars(tune.bars)
            for bar in tune.bars[full]:
                key = f"{bar['numerator']}/{bar['denominator']}"
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: -item[1]))
