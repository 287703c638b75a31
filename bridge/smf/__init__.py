"""Standard MIDI files: the one reader (symusic-backed) of the offline commands and the dataset builder,
and the writer that puts a model's output back into a file (tracks it did not act on are copied as they
were). docs/data.md, "Reading MIDI files", states the rules."""

from .chunks import MidiFileError
from .reader import read_midi
from .score import NOTE_TICKS, MidiPart, MidiScore, MidiTrack, bar_grid

__all__ = ["NOTE_TICKS", "MidiFileError", "MidiPart", "MidiScore", "MidiTrack", "bar_grid", "read_midi"]
