"""What the reader gives: a MIDI file's tracks, parts and notes in ticks, its tempo map and meter changes.

Times are MIDI ticks here (exact); `beats(tick)` = tick / ticks_per_beat (quarter notes, as everywhere
in musebridge). Bars follow the meter changes (`bar_grid`), whichever track they were written in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from musebridge.core.music import Meter

# one note in ticks: start, end (> start), pitch, velocity (1..127)
NOTE_TICKS = np.dtype([("start", "i8"), ("end", "i8"), ("pitch", "u1"), ("velocity", "u1")])
DEFAULT_BPM = 120.0  # the SMF default when no tempo event precedes a tick
DRUM_CHANNEL = 9  # MIDI channel 10, General MIDI percussion
_EPSILON = 1e-9


@dataclass(frozen=True)
class MidiPart:
    """The notes one MTrk chunk plays on one channel (and, when channels are not resolved, one program).

    `channel` is 0..15, or None when the score was read without resolving channels (the dataset path;
    drums are always known: channel 9). `program` is the General MIDI program (0..127) in force at the
    part's first note. `notes` is a NOTE_TICKS array sorted by (start, pitch).
    """

    track: int  # 0-based index of the MTrk chunk in the file
    channel: int | None
    program: int
    is_drum: bool
    notes: np.ndarray


@dataclass(frozen=True)
class MidiTrack:
    """One MTrk chunk: its name (the first track-name meta event), its parts and where it ends."""

    index: int
    name: str
    parts: tuple[MidiPart, ...]
    end_tick: int  # tick of its End of Track event (or of its last event)

    @property
    def pitched(self) -> bool:
        return any(not part.is_drum and part.notes.size for part in self.parts)

    def describe(self) -> str:
        """e.g. `2 "Violin" (program 48, channel 1, 159 notes)`; channels counted 1..16."""
        label = f'{self.index + 1} "{self.name.strip()}"' if self.name.strip() else f"{self.index + 1}"
        groups = []
        for part in self.parts:
            where = "drums" if part.is_drum else f"program {part.program}"
            if part.channel is not None:
                where += f", channel {part.channel + 1}"
            groups.append(f"{where}, {part.notes.size} notes")
        return f"{label} ({'; '.join(groups) or 'no notes'})"


@dataclass(frozen=True)
class MidiScore:
    """A whole MIDI file as read: tracks in file order, the tempo map and the meter changes of all tracks.

    `chunks` are the MTrk bodies as they were in the file, so a writer can put back untouched the tracks
    a model did not act on. `warnings` are one line each (a note still sounding at a track's end, ...).
    """

    source: str
    format: int
    ticks_per_beat: int
    tracks: tuple[MidiTrack, ...]
    tempos: tuple[tuple[int, float], ...]  # (tick, BPM in quarter notes per minute), sorted by tick
    meters: tuple[tuple[int, int, int], ...]  # (tick, numerator, denominator) as written, sorted
    keys: tuple[tuple[int, int, int], ...]  # (tick, sharps -7..7, 0 major / 1 minor)
    chunks: tuple[bytes, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def end_tick(self) -> int:
        return max((track.end_tick for track in self.tracks), default=0)

    def beats(self, tick: float) -> float:
        return tick / self.ticks_per_beat

    def parts(self, pitched_only: bool = False) -> list[MidiPart]:
        return [p for t in self.tracks for p in t.parts if not (pitched_only and p.is_drum) and p.notes.size]

    def bpm_at(self, tick: int) -> float:
        """The tempo in force at `tick` (the last change at or before it; 120 BPM before the first)."""
        bpm = DEFAULT_BPM
        for at, value in self.tempos:
            if at > tick:
                break
            bpm = value
        return bpm

    def meter_changes(self) -> list[tuple[float, Meter]]:
        """(beat, Meter) of every usable time signature; ones musebridge cannot count (e.g. x/64) are
        skipped, so the bars there keep the meter before them."""
        changes = []
        for tick, numerator, denominator in self.meters:
            try:
                changes.append((self.beats(tick), Meter(numerator, denominator)))
            except ValueError:
                continue
        return changes

    def key_name(self) -> str:
        """The first key signature as e.g. "G major" / "E minor"; "" without one."""
        if not self.keys:
            return ""
        _tick, sharps, minor = self.keys[0]
        names = MINOR_KEYS if minor else MAJOR_KEYS
        return f"{names[max(-7, min(7, sharps)) + 7]} {'minor' if minor else 'major'}"


MAJOR_KEYS = ("Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#")
MINOR_KEYS = ("Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#", "G#", "D#", "A#")


MAX_BARS = 2**16  # the longest file the reader takes (bars of its own meters): hours of real music


def _meter_points(changes: list[tuple[float, Meter]]) -> list[tuple[float, Meter]]:
    points = sorted(changes, key=lambda change: change[0])
    if not points or points[0][0] > 1e-4:
        points.insert(0, (0.0, Meter(4, 4)))
    return points


def bar_count(total_beats: float, changes: list[tuple[float, Meter]]) -> int:
    """How many bars bar_grid(total_beats, changes) lays, counted without laying them."""
    points = _meter_points(changes)
    count = 0
    for i, (start, meter) in enumerate(points):
        stop = points[i + 1][0] if i + 1 < len(points) else total_beats
        if stop > start + 1e-4:
            count += math.ceil((stop - 1e-4 - start) / meter.beats_per_bar)
    return count


def bar_grid(total_beats: float, changes: list[tuple[float, Meter]]) -> list[tuple[float, float, Meter]]:
    """(start beat, length in beats, meter) of every bar up to `total_beats`, following meter changes.

    A change that falls inside a bar cuts that bar short; with no change at beat 0 the bars start in
    4/4 (the SMF default). Bars are laid from each change on, so a change always starts a bar.
    ValueError when that is more than 2 * MAX_BARS bars: a safety net, as read_midi refuses files of
    more than MAX_BARS bars before anyone lays their grid (callers may lay a bar or two past the end).
    """
    count = bar_count(total_beats, changes)
    if count > 2 * MAX_BARS:
        raise ValueError(f"{count} bars, more than the {MAX_BARS} a file may have")
    points = _meter_points(changes)
    bars = []
    for i, (start, meter) in enumerate(points):
        stop = points[i + 1][0] if i + 1 < len(points) else total_beats
        beat = start
        while beat < stop - 1e-4:
            bars.append((beat, min(meter.beats_per_bar, stop - beat), meter))
            beat += meter.beats_per_bar
    return bars
