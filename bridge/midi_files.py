"""MIDI files for the offline commands: read a .mid into a Phrase, write phrases to a .mid atomically.

Reading merges every non-drum track, takes the file's first time signature (4/4 when it has none or an
unusable one) and its first tempo (120 BPM when it has none); times become beats (quarter notes) through
the file's own tempo map. A missing, unreadable or note-less file is a one-line UserError. Writing puts
the phrases one after another on one piano track and goes through a temporary file in the same folder
that is renamed over the target, so a failure leaves no partial file (and an older target untouched).
pretty_midi is imported inside the functions so that building the CLI stays cheap. No torch here.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from pathlib import Path

from musebridge.core.music import Meter, Note, Phrase
from musebridge.errors import UserError

DEFAULT_TEMPO = 120.0
DEFAULT_TRACK_NAME = "musebridge"

# (start beat, end beat, pitch, velocity) of one note, in beats from the file's start
_RawNote = tuple[float, float, int, int]


def _load(path: Path):
    """The parsed pretty_midi.PrettyMIDI of `path`; UserError if missing or unreadable."""
    import pretty_midi

    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pretty_midi.PrettyMIDI(str(path))
    except Exception as error:  # noqa: BLE001 - any parser failure means an unreadable file
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise UserError(f"{path}: not a readable MIDI file ({reason})") from error


def _read_notes(path: Path) -> tuple[list[_RawNote], Meter, float]:
    """(non-drum notes in beats, first meter, first tempo in BPM); UserError if there are no notes."""
    midi = _load(path)
    meter = Meter()
    if midi.time_signature_changes:
        first = midi.time_signature_changes[0]
        try:
            meter = Meter(first.numerator, first.denominator)
        except ValueError:
            meter = Meter()
    resolution = float(midi.resolution)
    notes: list[_RawNote] = []
    for instrument in midi.instruments:
        if instrument.is_drum:
            continue
        for note in instrument.notes:
            start = midi.time_to_tick(note.start) / resolution
            end = midi.time_to_tick(note.end) / resolution
            if end - start > 1e-6:
                notes.append((start, end, note.pitch, max(1, min(127, note.velocity))))
    if not notes:
        raise UserError(f"{path}: no notes (an empty MIDI file, or drums only)")
    _times, tempi = midi.get_tempo_changes()
    tempo = float(tempi[0]) if len(tempi) else DEFAULT_TEMPO
    return notes, meter, tempo


def read_midi_phrase(path: Path) -> tuple[Phrase, float]:
    """(all non-drum notes as one phrase from bar 1 in the first meter, tempo in BPM).

    The phrase has as many bars as it takes to hold the last onset. UserError if missing, unreadable
    or without notes.
    """
    notes, meter, tempo = _read_notes(path)
    last_onset = max(start for start, _end, _pitch, _velocity in notes)
    bars = math.floor(last_onset / meter.beats_per_bar + 1e-9) + 1
    phrase_notes = tuple(Note(pitch, velocity, start, end - start) for start, end, pitch, velocity in notes)
    return Phrase(phrase_notes, bars, meter), tempo


def read_midi_clip(path: Path, bars: int) -> tuple[Phrase, float]:
    """(`bars` bars from the bar holding the first note, tempo in BPM); UserError if unusable.

    Notes starting in that window are kept (moved to the window's start) and cut at its end.
    """
    notes, meter, tempo = _read_notes(path)
    first_bar = math.floor(
        min(start for start, _end, _pitch, _velocity in notes) / meter.beats_per_bar + 1e-9
    )
    offset = first_bar * meter.beats_per_bar
    length = bars * meter.beats_per_bar
    kept = tuple(
        Note(pitch, velocity, start - offset, min(end, offset + length) - start)
        for start, end, pitch, velocity in notes
        if offset <= start < offset + length
    )
    return Phrase(kept, bars, meter), tempo


def write_phrases_midi(
    phrases: list[Phrase],
    path: Path,
    tempo: float = DEFAULT_TEMPO,
    track_name: str = DEFAULT_TRACK_NAME,
) -> None:
    """Write phrases one after another on one piano track at `tempo`, in the first phrase's meter.

    Each phrase is clipped to its bars. Missing parent folders are created. Atomic: the file is
    written beside the target as `.NAME.tmp` and renamed; on any failure that file is removed and
    an existing target is left as it was. UserError for no phrases or an OSError while writing.
    """
    import pretty_midi

    if not phrases:
        raise UserError("nothing to write")
    if not path.name or path.name in (".", ".."):
        raise UserError(f"{path}: cannot write (not a file name)")
    seconds_per_beat = 60.0 / tempo
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    meter = phrases[0].meter
    midi.time_signature_changes.append(pretty_midi.TimeSignature(meter.numerator, meter.denominator, 0.0))
    track = pretty_midi.Instrument(program=0, name=track_name)
    offset = 0.0
    for phrase in phrases:
        for note in phrase.clipped().notes:
            start = (offset + note.start) * seconds_per_beat
            end = start + note.duration * seconds_per_beat
            track.notes.append(pretty_midi.Note(note.velocity, note.pitch, start, end))
        offset += phrase.length_beats
    midi.instruments.append(track)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        midi.write(str(temporary))
        os.replace(temporary, path)
    except OSError as error:
        raise UserError(f"{path}: cannot write ({error.strerror or error})") from error
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)  # gone already after a successful rename
