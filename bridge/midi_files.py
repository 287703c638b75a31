"""MIDI files for the offline commands (`transfer`, `continue`, `interpolate`, `sample`).

Reading goes through musebridge.smf.read_midi, the reader the dataset builder uses too. The model acts
on the parts the user picks (`--track`, by number or name; default: every pitched track, merged),
in phrases that follow the file's meter changes; its output goes back into the file it came from:
each output note on the track, channel and program of the input note nearest to it, every other track
(drums included) copied byte for byte, the tempo map and meters as they were. A missing, unreadable or
note-less file is a one-line UserError; warnings (a note sounding at the end of its track ...) go to
stderr. Writing is atomic (a temporary file renamed over the target). No torch here.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musebridge.core.music import Meter, Note, Phrase
from musebridge.errors import UserError
from musebridge.smf import MidiFileError, MidiPart, MidiScore, bar_grid, read_midi
from musebridge.smf.writer import OutNote, new_midi, rewrite_midi

DEFAULT_TEMPO = 120.0
DEFAULT_TRACK_NAME = "musebridge"
WRITE_TICKS_PER_BEAT = 480  # resolution of files written from scratch


def open_midi(path: Path) -> MidiScore:
    """The file read with channels resolved; UserError naming the file and the cause; warnings printed."""
    try:
        score = read_midi(path, channels=True)
    except MidiFileError as error:
        raise UserError(f"{path}: {_cause(error)}") from None
    for warning in score.warnings:
        print(f"warning: {path}: {warning}", file=sys.stderr)
    return score


def _cause(error: MidiFileError) -> str:
    text = str(error)
    if text in ("no such file", "a folder, not a file"):
        return "no such file" if text == "no such file" else "no such file (a folder)"
    return f"not a readable MIDI file ({text})"


def select_parts(score: MidiScore, tracks: Sequence[str] | None = None) -> list[MidiPart]:
    """The pitched parts of the chosen tracks (by 1-based number or name; default: every track).

    UserError when a chosen track does not exist or has no pitched notes, or when the file has none.
    """
    if not tracks:
        parts = score.parts(pitched_only=True)
        if not parts:
            raise UserError(f"{score.source}: no notes (an empty MIDI file, or drums only)")
        return parts
    chosen = []
    for wanted in tracks:
        text = wanted.strip()
        matches = [
            t for t in score.tracks if (text.isdigit() and t.index + 1 == int(text)) or t.name.strip() == text
        ]
        if not matches:
            names = "; ".join(t.describe() for t in score.tracks)
            raise UserError(f"{score.source}: no track {wanted!r} (tracks: {names})")
        for track in matches:
            pitched = [p for p in track.parts if not p.is_drum and p.notes.size]
            if not pitched:
                raise UserError(f"{score.source}: track {track.describe()} has no pitched notes")
            chosen += [p for p in pitched if p not in chosen]
    return chosen


@dataclass(frozen=True)
class Segment:
    """A run of bars of one meter: where it starts, how long it really is, and its bars."""

    start: float  # beats
    length: float  # beats (the last bar may be cut short by the next meter change)
    bars: int
    meter: Meter


def segments(score: MidiScore, last_beat: float) -> list[Segment]:
    """The file's bars from beat 0 through the bar holding `last_beat` (that bar whole), grouped into
    runs of one meter (bars follow meter changes)."""
    changes = score.meter_changes()
    longest = max([meter.beats_per_bar for _beat, meter in changes] + [4.0])
    # lay the grid a bar past last_beat so the bar holding it is whole, then keep the bars up to it
    grid = [bar for bar in bar_grid(last_beat + longest + 1.0, changes) if bar[0] <= last_beat + 1e-9]
    runs: list[Segment] = []
    for start, length, meter in grid:
        last = runs[-1] if runs else None
        if last is not None and last.meter == meter and abs(last.start + last.length - start) < 1e-6:
            runs[-1] = Segment(last.start, last.length + length, last.bars + 1, meter)
        else:
            runs.append(Segment(start, length, 1, meter))
    return runs


def _part_notes(score: MidiScore, parts: Sequence[MidiPart]) -> list[tuple[Note, int]]:
    """(note in beats, index of its part) of the parts, sorted by start and pitch."""
    scale = 1.0 / score.ticks_per_beat
    out = []
    for index, part in enumerate(parts):
        for row in part.notes:
            start = int(row["start"]) * scale
            out.append(
                (
                    Note(
                        int(row["pitch"]),
                        int(row["velocity"]),
                        start,
                        (int(row["end"]) - int(row["start"])) * scale,
                    ),
                    index,
                )
            )
    out.sort(key=lambda item: (item[0].start, item[0].pitch))
    return out


def phrases_of(score: MidiScore, parts: Sequence[MidiPart]) -> list[tuple[Segment, Phrase]]:
    """The parts' notes as one phrase per run of one meter (notes by onset; starts from the run's
    first bar line), through the bar holding the end of the last note to sound (a note held past its
    bar is covered whole; one ending on a bar line does not add the bar after it). The last segment
    thus ends on the first bar line at or after every note's end."""
    notes = [note for note, _part in _part_notes(score, parts)]
    last_onset = max(note.start for note in notes)
    last_sound = max(last_onset, max(note.end for note in notes) - 1e-6)
    out = []
    for segment in segments(score, last_sound):
        inside = tuple(
            note.shifted(-segment.start)
            for note in notes
            if segment.start - 1e-9 <= note.start < segment.start + segment.length - 1e-9
        )
        out.append((segment, Phrase(inside, segment.bars, segment.meter)))
    return out


def _assign(score: MidiScore, parts: Sequence[MidiPart], notes: Sequence[Note]) -> dict[int, list[OutNote]]:
    """Each note (beats) on the part of the input note nearest to it: an identical input note first
    (each used once), else an overlapping one (else the nearest in time) of the same velocity (the
    models take their velocities from the input notes), then of the nearest pitch.
    Returns {track index: OutNotes} in ticks, on that part's channel."""
    sources = _part_notes(score, parts)
    if not sources:
        raise ValueError("no input notes to place the output on")
    tpb = score.ticks_per_beat
    exact: dict[tuple[int, int, int, int], list[int]] = {}
    for note, part in sources:
        key = (note.pitch, note.velocity, round(note.start * tpb), round(note.end * tpb))
        exact.setdefault(key, []).append(part)
    starts = np.array([n.start for n, _p in sources])
    ends = np.array([n.end for n, _p in sources])
    pitches = np.array([n.pitch for n, _p in sources])
    velocities = np.array([n.velocity for n, _p in sources])
    owner = np.array([p for _n, p in sources])
    out: dict[int, list[OutNote]] = {}
    for note in notes:
        start, end = round(note.start * tpb), round(note.end * tpb)
        if end <= start:
            continue
        pool = exact.get((note.pitch, note.velocity, start, end))
        if pool:
            index = pool.pop(0)
        else:
            gap = np.maximum(0.0, np.maximum(starts - note.end, note.start - ends))
            cost = np.where(gap > 0, 1e6, 0.0) + gap * 1e3 + np.abs(pitches - note.pitch)
            cost += np.where(velocities == note.velocity, 0.0, 500.0)  # the models copy input velocities
            index = int(owner[int(np.argmin(cost))])
        part = parts[index]
        channel = part.channel if part.channel is not None else 0
        out.setdefault(part.track, []).append(OutNote(channel, note.pitch, note.velocity, start, end))
    return out


def write_back(
    score: MidiScore, parts: Sequence[MidiPart], notes: Sequence[Note], path: Path, replace: bool = True
) -> int:
    """Write `score` to `path` with the model's `notes` (beats) on the acted `parts` (their notes replaced,
    or kept with replace=False, for an answer added after a call). Other tracks are copied untouched.
    Returns how many of `notes` were written: a note shorter than half a tick at the file's PPQN has
    no length in it and is left out."""
    drop: dict[int, set[int]] = {}
    if replace:
        for part in parts:
            drop.setdefault(part.track, set()).add(part.channel if part.channel is not None else 0)
    try:
        add = _assign(score, parts, notes)
        rewrite_midi(score, path, drop, add)
    except OSError as error:
        raise UserError(f"{path}: cannot write ({error.strerror or error})") from error
    return sum(len(placed) for placed in add.values())


def describe_selection(score: MidiScore, parts: Sequence[MidiPart]) -> str:
    """One line: the tracks the model acts on (merged) and the tracks left as they were."""
    acted = sorted({p.track for p in parts})
    merged = [score.tracks[i].describe() for i in acted]
    left = [t.describe() for t in score.tracks if t.index not in acted and t.parts]
    text = f"model input: {' + '.join(merged)}{' (merged)' if len(parts) > 1 else ''}"
    return text + (f"; left as they were: {', '.join(left)}" if left else "; no other tracks with notes")


def describe_timing(score: MidiScore) -> str:
    """e.g. "tempo 90 BPM, meter 4/4 -> 3/4 at beat 4" (the changes the output keeps)."""
    tempi = sorted({round(bpm, 2) for _tick, bpm in score.tempos}) or [DEFAULT_TEMPO]
    tempo = f"tempo {tempi[0]:g} BPM" if len(tempi) == 1 else f"{len(score.tempos)} tempo changes"
    meters = score.meter_changes() or [(0.0, Meter())]
    meters = [(b, m) for i, (b, m) in enumerate(meters) if i == 0 or m != meters[i - 1][1]]  # restated
    meter = " -> ".join(f"{m} at beat {b:g}" if b else str(m) for b, m in meters)
    return f"{tempo}, meter {meter}"


def read_midi_phrase(path: Path, tracks: Sequence[str] | None = None) -> tuple[Phrase, float]:
    """(the chosen parts as one phrase from bar 1 in the first meter, first tempo in BPM).

    For callers that need one phrase (the melody of a file); the offline commands use phrases_of.
    """
    score = open_midi(path)
    notes = [note for note, _part in _part_notes(score, select_parts(score, tracks))]
    meter = (score.meter_changes() or [(0.0, Meter())])[0][1]
    last_onset = max(note.start for note in notes)
    bars = math.floor(last_onset / meter.beats_per_bar + 1e-9) + 1
    return Phrase(tuple(notes), bars, meter), score.bpm_at(0)


@dataclass(frozen=True)
class Clip:
    """`bars` bars of a file from the bar holding its first note, and where they came from."""

    phrase: Phrase
    tempo: float  # BPM at the clip's start
    channel: int
    program: int
    own_meter: Meter | None = None  # the meter of the bar holding the first note (if `meter` replaced it)
    source: str = ""  # one line: the tracks read (describe_selection) and the part the channel came from


def read_midi_clip(
    path: Path, bars: int, tracks: Sequence[str] | None = None, meter: Meter | None = None
) -> Clip:
    """`bars` bars (in the meter of the bar holding the first note, or `meter` when given) from that bar
    on; notes starting in the window are kept (moved to its start) and cut at its end. The channel and
    program are those of the part with the most notes in the window (the melody of a lead sheet, not
    the first bass note). UserError if unusable."""
    score = open_midi(path)
    parts = select_parts(score, tracks)
    pairs = _part_notes(score, parts)
    first = min(note.start for note, _part in pairs)
    grid = bar_grid(first + 0.01, score.meter_changes())
    offset, _length, own = [bar for bar in grid if bar[0] <= first + 1e-9][-1]
    meter = meter or own
    length = bars * meter.beats_per_bar
    inside = [(note, part) for note, part in pairs if offset <= note.start < offset + length]
    kept = tuple(
        Note(note.pitch, note.velocity, note.start - offset, min(note.end, offset + length) - note.start)
        for note, _part in inside
    )
    counts = np.bincount([part for _note, part in inside], minlength=len(parts))
    source = parts[int(np.argmax(counts))]  # most notes; ties: the first part in file order
    channel = source.channel if source.channel is not None else 0
    tick = round(offset * score.ticks_per_beat)
    where = (
        f"channel {channel + 1}, program {source.program} (track {source.track + 1}, "
        f"its part with the most notes in the clip)"
    )
    line = describe_selection(score, parts).replace("left as they were", "not read")
    line = f"{line}; written on {where}"
    return Clip(Phrase(kept, bars, meter), score.bpm_at(tick), channel, source.program, own, line)


def write_phrases_midi(
    phrases: list[Phrase],
    path: Path,
    tempo: float = DEFAULT_TEMPO,
    track_name: str = DEFAULT_TRACK_NAME,
    channel: int = 0,
    program: int = 0,
) -> None:
    """Write phrases one after another on one track (channel, program) at `tempo`, in the first
    phrase's meter (a meter event wherever a phrase's meter differs). Each phrase is clipped to its bars.
    Missing folders are created; atomic (nothing is left on failure); UserError for no phrases or an
    OSError while writing."""
    if not phrases:
        raise UserError("nothing to write")
    if not path.name or path.name in (".", ".."):
        raise UserError(f"{path}: cannot write (not a file name)")
    tpb = WRITE_TICKS_PER_BEAT
    notes, meters, offset, current = [], [], 0.0, None
    for phrase in phrases:
        if phrase.meter != current:
            meters.append((round(offset * tpb), phrase.meter.numerator, phrase.meter.denominator))
            current = phrase.meter
        for note in phrase.clipped().notes:
            start, end = round((offset + note.start) * tpb), round((offset + note.end) * tpb)
            if end > start:
                notes.append(OutNote(channel, note.pitch, note.velocity, start, end))
        offset += phrase.length_beats
    try:
        new_midi(path, tpb, [(0, tempo)], meters, [(track_name, channel, program, notes)])
    except OSError as error:
        raise UserError(f"{path}: cannot write ({error.strerror or error})") from error
