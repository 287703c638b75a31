"""Windows of a dataset encoded as arrays, ready for a model's training loop (numpy; no torch here).

    from musebridge.models.data import TuneDataset, melody_windows
    data = TuneDataset.load()                        # <cache>/dataset.npz
    train = melody_windows(data, bars=2, split="train", genres=["folk"])
    train.tokens      # int64 [N, 32]: 90-class tokens, 2 bars of 4/4 at 16 steps per bar
    train.genre       # int64 [N]: index into train.genres
    augment_transpose(train.tokens[batch], rng)      # ±5 semitones, per row, range kept

Windows are cut per split (the split belongs to the tune), so no tune crosses splits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from musebridge.core.music import Meter

from ..encoding import melody, pianoroll, tones
from .dataset import TuneDataset, Window, tune_windows


@dataclass(frozen=True)
class EncodedWindows:
    """Encoded windows with where each came from: array[i] is window i of tune tune_index[i]."""

    array: np.ndarray
    genre: np.ndarray  # int64 [N]: index into `genres`
    genres: tuple[str, ...]
    tune_index: np.ndarray  # int64 [N]
    start_beat: np.ndarray  # float64 [N]
    meter: Meter | None  # None when windows of several meters are mixed (piano roll, tones)
    lengths: np.ndarray | None = None  # int64 [N]: real steps of each row of a padded ragged array

    @property
    def tokens(self) -> np.ndarray:
        """Alias of `array` for token encodings."""
        return self.array

    def __len__(self) -> int:
        return int(self.array.shape[0])


def _window_meta(
    data: TuneDataset,
    windows: list[Window],
    meter: Meter | None,
    array: np.ndarray,
    lengths: np.ndarray | None = None,
) -> EncodedWindows:
    genres = data.genres
    lookup = {g: i for i, g in enumerate(genres)}
    return EncodedWindows(
        array=array,
        genre=np.array([lookup[data.tunes[w.tune_index].genre] for w in windows], dtype=np.int64),
        genres=genres,
        tune_index=np.array([w.tune_index for w in windows], dtype=np.int64),
        start_beat=np.array([w.start for w in windows], dtype=np.float64),
        meter=meter,
        lengths=lengths,
    )


def melody_windows(
    data: TuneDataset,
    bars: int = 2,
    split: str | None = "train",
    genres: Iterable[str] | None = None,
    meter: Meter | None = None,
    hop_bars: int = 1,
    min_notes: int = 2,
    regroup: bool = True,
) -> EncodedWindows:
    """Melody tokens [N, bars * steps_per_bar(meter)] of every window (default 4/4, regrouped).

    With regroup=True (default) 2/4, 2/2, 4/2 ... tunes are re-cut into bars of `meter`, so the
    duple-meter part of the corpus feeds a 4/4 model; 3/4, 6/8 ... need their own `meter`.
    """
    meter = meter or Meter(4, 4)
    windows = data.windows(bars, split, genres, meter, hop_bars, min_notes, regroup)
    steps = bars * melody.steps_per_bar(meter)
    tokens = np.zeros((len(windows), steps), dtype=np.int64)
    for row, window in enumerate(windows):
        notes = data.tunes[window.tune_index].note_array_between(window.start, window.length_beats)
        quantized = melody.quantize_arrays(notes["start"], notes["duration"], notes["pitch"], window.start)
        tokens[row] = melody.encode_steps(quantized, steps)
    return _window_meta(data, windows, meter, tokens)


def _subsample(windows: list[Window], limit: int | None, seed: int) -> list[Window]:
    if limit is None or len(windows) <= limit:
        return windows
    chosen = np.sort(np.random.default_rng(seed).choice(len(windows), size=limit, replace=False))
    return [windows[i] for i in chosen.tolist()]


def roll_phrase_windows(
    data: TuneDataset,
    split: str | None = "train",
    genres: Iterable[str] | None = None,
    hop_bars: int | None = None,
    min_notes: int = 4,
) -> list[Window]:
    """Piano-roll phrases: in each tune's own meter, as many bars as fit in 64 steps (at most 4:
    4/4 -> 4 bars = 64 steps, 3/4 -> 4 bars = 48 + padding, 4/2 -> 2 bars); hop = the phrase
    length unless given (non-overlapping, as Brunner et al.)."""
    out = []
    for index in data.indices(genres, split):
        tune = data.tunes[index]
        meters = {(int(b["numerator"]), int(b["denominator"])) for b in tune.bars}
        for numerator, denominator in sorted(meters):
            try:
                meter = Meter(numerator, denominator)
                bars = pianoroll.max_bars(meter)
                pianoroll.phrase_steps(meter, bars)
            except ValueError:
                continue  # a meter off the sixteenth grid
            if bars < 1:
                continue
            found = tune_windows(tune, bars, hop_bars or bars, min_notes, meter)
            out += [Window(index, bar_index, bars, m, start) for bar_index, start, m in found]
    return out


def roll_windows(
    data: TuneDataset,
    split: str | None = "train",
    genres: Iterable[str] | None = None,
    hop_bars: int | None = None,
    min_notes: int = 4,
    limit: int | None = None,
    seed: int = 0,
) -> EncodedWindows:
    """Binary rolls bool [N, 64, 84] of roll_phrase_windows (all tracks merged); `limit` keeps a
    seeded random subset (a roll is 5.4 kB, so 100k windows would take 540 MB)."""
    windows = _subsample(roll_phrase_windows(data, split, genres, hop_bars, min_notes), limit, seed)
    rolls = np.zeros((len(windows), pianoroll.ROLL_STEPS, pianoroll.N_PITCHES), dtype=bool)
    for row, window in enumerate(windows):
        notes = data.tunes[window.tune_index].note_objects_between(window.start, window.length_beats)
        rolls[row] = pianoroll.encode_notes(notes, window.meter, window.bars, offset_beats=window.start)
    return _window_meta(data, windows, None, rolls)


def tone_windows(
    data: TuneDataset,
    bars: int = 4,
    split: str | None = "train",
    genres: Iterable[str] | None = None,
    meter: Meter | None = None,
    hop_bars: int = 1,
    min_notes: int = 4,
    tones_per_step: int = tones.TONES_PER_STEP,
) -> EncodedWindows:
    """C-RNN-GAN tone arrays of `bars`-bar windows, zero-padded to the longest: float32
    [N, max_steps, tones_per_step * 4], real lengths in `.lengths` (padding rows are silent)."""
    windows = data.windows(bars, split, genres, meter, hop_bars, min_notes)
    encoded = []
    for window in windows:
        notes = data.tunes[window.tune_index].note_objects_between(window.start, window.length_beats)
        encoded.append(tones.encode_notes(notes, tones_per_step, offset_beats=window.start))
    lengths = np.array([len(a) for a in encoded], dtype=np.int64)
    width = tones_per_step * tones.N_FEATURES
    array = np.zeros((len(encoded), int(lengths.max()) if len(encoded) else 0, width), dtype=np.float32)
    for row, values in enumerate(encoded):
        array[row, : len(values)] = values
    return _window_meta(data, windows, meter, array, lengths)
