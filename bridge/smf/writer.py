"""Writing MIDI files: a model's output put back into the file it came from, or a new file of phrases.

`rewrite_midi` copies every MTrk chunk byte for byte, except the chunks whose notes a model replaced or
added to: those keep every other event (program and control changes, meta events, the notes of other
channels such as drums) and get the new notes. `new_midi` writes a fresh format-1 file (a conductor
track with the tempo map and meters, then one track per part). Both write through a temporary file in
the target's folder that is renamed over the target, so a failure leaves no partial file.
Note events at one tick are written note-offs first, then note-ons ordered by their end, so that a
reader pairing overlapping same-pitch notes first-in first-out gets back exactly these notes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .chunks import END_OF_TRACK, chunk_bytes, header_bytes
from .events import walk
from .score import MidiScore


@dataclass(frozen=True, slots=True)
class OutNote:
    """A note to write, in ticks: channel 0..15, pitch 0..127, velocity 1..127, start < end."""

    channel: int
    pitch: int
    velocity: int
    start: int
    end: int


def _vlq(value: int) -> bytes:
    out = bytearray((value & 0x7F,))
    value >>= 7
    while value:
        out.insert(0, 0x80 | (value & 0x7F))
        value >>= 7
    return bytes(out)


def _note_events(notes: Iterable[OutNote]) -> list[tuple[int, int, int, bytes]]:
    """(tick, rank, order, message) of the notes: offs (rank 1) first at a tick, ons by end."""
    events = []
    for note in notes:
        if not (0 <= note.channel <= 15 and 0 <= note.pitch <= 127 and 1 <= note.velocity <= 127):
            raise ValueError(f"not a writable note: {note}")
        if note.end <= note.start or note.start < 0:
            raise ValueError(f"a note must start at tick >= 0 and end after it: {note}")
        events.append((note.start, 2, note.end, bytes((0x90 | note.channel, note.pitch, note.velocity))))
        events.append((note.end, 1, 0, bytes((0x80 | note.channel, note.pitch, 0))))
    return events


def encode_track(events: Sequence[tuple[int, bytes]], end_tick: int) -> bytes:
    """An MTrk body of (tick, complete message bytes) already in order, then End of Track at
    max(end_tick, last event)."""
    out = bytearray()
    now = 0
    for tick, message in events:
        out += _vlq(tick - now) + message
        now = tick
    return bytes(out + _vlq(max(end_tick, now) - now) + END_OF_TRACK)


def rebuilt_chunk(body: bytes, drop_channels: set[int], notes: Sequence[OutNote]) -> bytes:
    """`body` without the note events of `drop_channels`, with `notes` added; every other event kept
    in its order (at a shared tick before the new notes). The track ends where it ended, or at the last
    new note-off if that is later. A kept note still sounding at the track's old end (no note-off: the
    reader ended it there) gets its note-off there, so it does not hang under what the track now holds
    after that."""
    kept: list[tuple[int, int, int, bytes]] = []
    sounding: dict[tuple[int, int], int] = {}
    end = 0
    for tick, _offset, status, data, message in walk(body):
        end = tick
        if status == 0xFF and data[:1] == b"\x2f":
            break
        kind = status & 0xF0 if status < 0xF0 else 0
        if kind in (0x80, 0x90) and (status & 0x0F) in drop_channels:
            continue
        if kind in (0x80, 0x90):
            key = (status & 0x0F, data[0])
            if kind == 0x90 and data[1] > 0:
                sounding[key] = sounding.get(key, 0) + 1
            elif sounding.get(key):
                sounding[key] -= 1
        kept.append((tick, 0, len(kept), message))
    closing = [
        (end, 1, 0, bytes((0x80 | channel, pitch, 0)))
        for (channel, pitch), count in sorted(sounding.items())
        for _ in range(count)
    ]
    events = sorted(kept + closing + _note_events(notes), key=lambda event: event[:3])
    return encode_track([(tick, message) for tick, _rank, _order, message in events], end)


def rewrite_midi(
    score: MidiScore,
    path: Path,
    drop: dict[int, set[int]],
    add: dict[int, Sequence[OutNote]],
) -> None:
    """Write `score` to `path` with, in each track index of `drop`/`add`, the notes of those channels
    removed and those notes added; every other track is its original chunk, byte for byte."""
    chunks = []
    for index, body in enumerate(score.chunks):
        if index in drop or index in add:
            body = rebuilt_chunk(body, drop.get(index, set()), add.get(index, ()))
        chunks.append(chunk_bytes(body))
    data = header_bytes(score.format, len(chunks), score.ticks_per_beat) + b"".join(chunks)
    write_atomically(path, data)


def new_midi(
    path: Path,
    ticks_per_beat: int,
    tempos: Sequence[tuple[int, float]],
    meters: Sequence[tuple[int, int, int]],
    parts: Sequence[tuple[str, int, int, Sequence[OutNote]]],
) -> None:
    """A format-1 file: a conductor track (tempo changes (tick, BPM), time signatures (tick, n, d)),
    then one track per (name, channel, program, notes)."""
    conductor = []
    for tick, bpm in tempos:
        microseconds = max(1, min(0xFFFFFF, round(60_000_000 / bpm)))
        conductor.append((tick, 0, b"\xff\x51\x03" + microseconds.to_bytes(3, "big")))
    for tick, numerator, denominator in meters:
        power = max(0, denominator.bit_length() - 1)
        conductor.append((tick, 1, bytes((0xFF, 0x58, 4, numerator, power, 24, 8))))
    conductor.sort(key=lambda event: event[:2])
    chunks = [chunk_bytes(encode_track([(tick, message) for tick, _rank, message in conductor], 0))]
    for name, channel, program, notes in parts:
        head = [(0, b"\xff\x03" + _vlq(len(name.encode())) + name.encode())]
        head.append((0, bytes((0xC0 | channel, program))))
        events = sorted(_note_events(notes), key=lambda event: event[:3])
        chunks.append(chunk_bytes(encode_track(head + [(t, m) for t, _r, _o, m in events], 0)))
    write_atomically(path, header_bytes(1, len(chunks), ticks_per_beat) + b"".join(chunks))


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through `.NAME.tmp` beside it and a rename; OSError passes through, and
    leaves neither a partial file nor a changed target."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)  # gone already after a successful rename
