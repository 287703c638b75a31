"""The one MIDI file reader of musebridge: the offline commands and the dataset builder both use it.

Rules (docs/data.md, "Reading MIDI files"):
- every MTrk chunk is parsed on its own by symusic (a C++ parser), so each note is known to come from
  one track; tempo, time-signature and key-signature events count from whichever track holds them;
- two overlapping notes of one pitch and channel are paired first-in first-out (the first note-off
  ends the earliest note still sounding), as in the live path;
- a note still sounding at the end of its track (no note-off) ends at the end of its track, with a
  warning; notes of zero length are left out (they cannot sound), with a warning;
- a file that is not a usable SMF is refused with MidiFileError, one line naming the real cause.

With `channels=True` (the offline commands) each part's MIDI channel is resolved too, by a walk over
the events of the chunk; without it (the dataset) only drums are known by channel, which keeps the
bulk path at C++ speed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .chunks import (
    END_MARKER,
    END_OF_TRACK,
    LATE,
    TRACK_LABEL,
    MidiFileError,
    chunk_bytes,
    closed_body,
    header_bytes,
    split_chunks,
)
from .events import end_of_track, note_keys
from .score import DRUM_CHANNEL, MAX_BARS, NOTE_TICKS, MidiPart, MidiScore, MidiTrack, bar_count


def printable_name(name: str) -> str:
    """A track name as shown and matched by --track: control characters left out (programs that write
    C strings end names with NUL bytes, which reached the terminal raw)."""
    return "".join(c for c in name if c.isprintable())


def read_midi(source: Path | str | bytes, channels: bool = False) -> MidiScore:
    """Read a MIDI file (a path, or its bytes) into a MidiScore.

    channels=False (the dataset): the whole file in one parser call; parts carry no channel (drums
    excepted) and tracks no name. channels=True (the offline commands): each chunk parsed on its own,
    with each part's channel resolved and each track's name. The notes are the same either way.
    Raises MidiFileError (a ValueError) with a one-line reason for a missing or unreadable file, or one
    that is not a usable SMF (see chunks.split_chunks, and "track N: ..." for a corrupt track).
    """
    if isinstance(source, bytes | bytearray):
        data, name = bytes(source), "<bytes>"
    else:
        path = Path(source)
        name = str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MidiFileError("no such file") from None
        except IsADirectoryError:
            raise MidiFileError("a folder, not a file") from None
        except OSError as error:
            raise MidiFileError(f"cannot read it ({error.strerror or error})") from None
    chunks = split_chunks(data)
    bodies = [_through_first_end(body, index) for index, body in enumerate(chunks.tracks)]
    warnings = list(chunks.warnings)
    if channels:
        parsed = [
            (i, _parse(header_bytes(0, 1, chunks.ticks_per_beat), [closed_body(b, i)], i))
            for i, b in enumerate(bodies)
        ]
    else:
        closed = [closed_body(b, i, label=True) for i, b in enumerate(bodies)]
        parsed = [(None, _parse(header_bytes(1, len(closed), chunks.ticks_per_beat), closed, None))]
    ends: dict[int, int] = {}
    groups: dict[int, list] = {i: [] for i in range(len(bodies))}
    names: dict[int, str] = {}
    tempos, meters, keys = [], [], []
    for index, score in parsed:
        for marker in score.markers:
            if marker.text.startswith(END_MARKER):
                ends[int(marker.text[len(END_MARKER) :])] = int(marker.time)
        for track in score.tracks:
            owner = index if index is not None else int(track.name[len(TRACK_LABEL) :])
            if index is not None:
                names[owner] = names.get(owner) or printable_name(track.name)
            groups[owner].append(track)
        tempos += [(int(t.time), float(t.qpm)) for t in score.tempos]
        meters += [(int(t.time), int(t.numerator), int(t.denominator)) for t in score.time_signatures]
        keys += [(int(k.time), int(k.key), int(k.tonality)) for k in score.key_signatures]
    for tick, qpm in tempos:
        if not math.isfinite(qpm) or qpm <= 0:  # 00 00 00 microseconds per beat: time would stand still
            raise MidiFileError(f"a tempo event of 0 microseconds per beat at tick {tick}")
    if max(ends.values(), default=0) >= LATE:
        raise MidiFileError(f"a track lasts more than {LATE - 1} ticks (the reader's limit)")
    tracks = []
    for index, body in enumerate(bodies):
        label = f"track {index + 1}{f' ({names[index].strip()})' if names.get(index, '').strip() else ''}"
        found, dangling, zero = [], 0, 0
        for track in groups[index]:
            notes, late, empty = _notes(track)
            dangling, zero = dangling + late, zero + empty
            if notes is not None:
                found.append((int(track.program), bool(track.is_drum), notes))
        if dangling:
            warnings.append(f"{label}: {dangling} note(s) still sounding at the end of the track end there")
        if zero:
            warnings.append(
                f"{label}: {zero} note(s) of zero length skipped (they cannot sound; transfer "
                "drops their events with the notes it replaces, continue keeps them)"
            )
        parts = _parts(index, body, found, channels, label)
        tracks.append(MidiTrack(index, names.get(index, ""), tuple(parts), ends.get(index, 0)))
    # stable sorts: at one tick the later track's event comes last and wins (in the one-call path
    # symusic has sorted each kind already, and decides the order within one tick)
    tempos.sort(key=lambda event: event[0])
    meters.sort(key=lambda event: event[0])
    keys.sort(key=lambda event: event[0])
    score = MidiScore(
        source=name,
        format=chunks.format,
        ticks_per_beat=chunks.ticks_per_beat,
        tracks=tuple(tracks),
        tempos=tuple(tempos),
        meters=tuple(meters),
        keys=tuple(keys),
        chunks=tuple(chunks.tracks),
        warnings=tuple(warnings),
    )
    bars = bar_count(score.beats(score.end_tick), score.meter_changes())
    if bars > MAX_BARS:  # checked before anyone lays a bar grid (a huge delta time in a tiny file)
        raise MidiFileError(f"too long: {bars} bars (the reader takes at most {MAX_BARS})")
    return score


def _through_first_end(body: bytes, index: int) -> bytes:
    """The chunk up to its first End of Track event (events after it are not part of the track)."""
    first = body.find(END_OF_TRACK)
    if first == -1 or first == len(body) - len(END_OF_TRACK):
        return body
    try:  # those bytes may be data inside an event: walk the events to be sure
        _tick, stop = end_of_track(body)
    except MidiFileError as error:
        raise MidiFileError(f"track {index + 1}: {error}") from None
    return body[:stop]


def _parse(header: bytes, bodies: list[bytes], index: int | None):
    """symusic's reading of a file made of `header` and these bodies; MidiFileError naming the track."""
    import symusic

    try:
        return symusic.Score.from_midi(header + b"".join(chunk_bytes(body) for body in bodies))
    except Exception as error:  # noqa: BLE001 - the parser's reason, placed on its track when known
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        reason = reason.removeprefix("MiniMidi: ").removesuffix(": iostream error")
        if index is None:  # find the guilty track: parse them one by one
            for number, body in enumerate(bodies):
                _parse(header_bytes(0, 1, int.from_bytes(header[12:14], "big")), [body], number)
        where = f"track {index + 1}: " if index is not None else ""
        raise MidiFileError(f"{where}corrupt event data ({reason})") from None


def _notes(track) -> tuple[np.ndarray | None, int, int]:
    """(NOTE_TICKS sorted by start and pitch or None without notes, notes that sounded to the end of
    the track, notes of zero length left out) of one symusic track."""
    columns = track.notes.numpy()
    count = columns["time"].size
    if count == 0:
        return None, 0, 0  # a group the parser made for other events (e.g. lyrics), without notes
    notes = np.empty(count, NOTE_TICKS)
    notes["start"], notes["end"] = columns["time"], columns["time"]
    notes["pitch"], notes["velocity"] = columns["pitch"], columns["velocity"]
    ends = notes["end"]
    ends += columns["duration"]
    late = ends >= LATE  # closed LATE ticks after the end of the track: ends at the end
    dangling = int(np.count_nonzero(late))
    if dangling:
        ends[late] -= LATE
    audible = ends > notes["start"]
    zero = count - int(np.count_nonzero(audible))
    if zero:
        notes = notes[audible]
    key = notes["start"] * 128
    key += notes["pitch"]
    return notes[np.argsort(key, kind="stable")], dangling, zero


def _parts(index: int, body: bytes, groups, channels: bool, label: str) -> list[MidiPart]:
    """One part per channel of the chunk when channels are resolved (a program change in the middle
    of a part keeps the first program), else one per (channel, program) group as the parser made them."""
    if not channels:
        return [
            MidiPart(index, DRUM_CHANNEL if drum else None, program, drum, notes)
            for program, drum, notes in groups
            if notes.size
        ]
    keys = note_keys(body)
    if len(keys) != len(groups):  # cannot happen for a file the parser read; say so rather than guess
        raise MidiFileError(f"{label}: its notes could not be matched to channels")
    by_channel: dict[int, list] = {}
    for (channel, _program), group in zip(keys, groups, strict=True):
        by_channel.setdefault(channel, []).append(group)
    parts = []
    for channel, members in sorted(by_channel.items()):
        members = [m for m in members if m[2].size]
        if not members:
            continue
        first = min(members, key=lambda member: int(member[2]["start"][0]))
        notes = np.concatenate([m[2] for m in members])
        notes = notes[np.lexsort((notes["pitch"], notes["start"]))]
        parts.append(MidiPart(index, channel, first[0], channel == DRUM_CHANNEL, notes))
    return parts
