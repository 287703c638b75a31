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

from pathlib import Path

import numpy as np

from .chunks import END_MARKER, END_OF_TRACK, MidiFileError, closed_track_file, split_chunks
from .events import end_of_track, note_keys
from .score import DRUM_CHANNEL, NOTE_TICKS, MidiPart, MidiScore, MidiTrack


def read_midi(source: Path | str | bytes, channels: bool = False) -> MidiScore:
    """Read a MIDI file (a path, or its bytes) into a MidiScore.

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
    warnings = list(chunks.warnings)
    tracks, tempos, meters, keys = [], [], [], []
    bodies = []
    for index, body in enumerate(chunks.tracks):
        body = _through_first_end(body, index)
        bodies.append(body)
        track, track_tempos, track_meters, track_keys, notes_warnings = _read_track(
            index, body, chunks.ticks_per_beat, channels
        )
        tracks.append(track)
        tempos += track_tempos
        meters += track_meters
        keys += track_keys
        warnings += notes_warnings
    # stable sorts: at one tick, the event of the later track wins (it is applied last)
    tempos.sort(key=lambda event: event[0])
    meters.sort(key=lambda event: event[0])
    keys.sort(key=lambda event: event[0])
    return MidiScore(
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


def _read_track(index: int, body: bytes, ticks_per_beat: int, channels: bool):
    import symusic

    try:
        score = symusic.Score.from_midi(closed_track_file(body, ticks_per_beat))
    except Exception as error:  # noqa: BLE001 - the parser's reason, placed on its track
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise MidiFileError(
            f"track {index + 1}: corrupt event data ({reason.removeprefix('MiniMidi: ')})"
        ) from None
    end = max((m.time for m in score.markers if m.text == END_MARKER), default=0)
    warnings: list[str] = []
    groups = []  # (program, is_drum, notes) per symusic track with notes: one (channel, program) of the chunk
    name = ""
    dangling = zero = 0
    for track in score.tracks:
        name = name or track.name
        columns = track.notes.numpy()
        if columns["time"].size == 0:
            continue  # a group the parser made for other events (e.g. lyrics), without notes
        notes = np.empty(columns["time"].size, NOTE_TICKS)
        notes["start"] = columns["time"]
        notes["end"] = columns["time"] + columns["duration"]
        notes["pitch"] = columns["pitch"]
        notes["velocity"] = columns["velocity"]
        sounding = notes["end"] > end  # closed by the note-offs one tick after the end
        dangling += int(sounding.sum())
        notes["end"][sounding] = end
        audible = notes["end"] > notes["start"]
        zero += int((~audible).sum())
        notes = notes[audible]
        groups.append(
            (int(track.program), bool(track.is_drum), notes[np.lexsort((notes["pitch"], notes["start"]))])
        )
    label = f"track {index + 1}{f' ({name.strip()})' if name.strip() else ''}"
    if dangling:
        warnings.append(f"{label}: {dangling} note(s) still sounding at the end of the track end there")
    if zero:
        warnings.append(f"{label}: {zero} note(s) of zero length left out")
    parts = _parts(index, body, groups, channels, label)
    tempos = [(int(t.time), float(t.qpm)) for t in score.tempos]
    meters = [(int(t.time), int(t.numerator), int(t.denominator)) for t in score.time_signatures]
    keys = [(int(k.time), int(k.key), int(k.tonality)) for k in score.key_signatures]
    return MidiTrack(index, name, tuple(parts), int(end)), tempos, meters, keys, warnings


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
