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

from ..encoding import melody
from .dataset import TuneDataset, Window


@dataclass(frozen=True)
class EncodedWindows:
    """Encoded windows with where each came from: array[i] is window i of tune tune_index[i]."""

    array: np.ndarray
    genre: np.ndarray  # int64 [N]: index into `genres`
    genres: tuple[str, ...]
    tune_index: np.ndarray  # int64 [N]
    start_beat: np.ndarray  # float64 [N]
    meter: Meter

    @property
    def tokens(self) -> np.ndarray:
        """Alias of `array` for token encodings."""
        return self.array

    def __len__(self) -> int:
        return int(self.array.shape[0])


def _window_meta(data: TuneDataset, windows: list[Window], meter: Meter, array: np.ndarray) -> EncodedWindows:
    genres = data.genres
    lookup = {g: i for i, g in enumerate(genres)}
    return EncodedWindows(
        array=array,
        genre=np.array([lookup[data.tunes[w.tune_index].genre] for w in windows], dtype=np.int64),
        genres=genres,
        tune_index=np.array([w.tune_index for w in windows], dtype=np.int64),
        start_beat=np.array([w.start for w in windows], dtype=np.float64),
        meter=meter,
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
        notes = data.tunes[window.tune_index].note_objects_between(window.start, window.length_beats)
        tokens[row] = melody.encode_notes(notes, meter, bars, offset_beats=window.start)
    return _window_meta(data, windows, meter, tokens)
