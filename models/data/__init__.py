"""Symbolic data: the music21 corpus and MIDI folders -> cached datasets, genre domains, windows."""

from .dataset import SPLITS, TuneDataset, Window, split_of, tune_windows
from .encoded import EncodedWindows, melody_windows, roll_phrase_windows, roll_windows, tone_windows
from .tunes import Tune

__all__ = [
    "SPLITS",
    "EncodedWindows",
    "Tune",
    "TuneDataset",
    "Window",
    "melody_windows",
    "roll_phrase_windows",
    "roll_windows",
    "tone_windows",
    "split_of",
    "tune_windows",
]
