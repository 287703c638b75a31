"""A plain walk over the events of one MTrk chunk (pure Python; used where exact event positions matter).

The note parser (symusic) does the bulk work; this walk is for the few questions it cannot answer: which
channel a group of notes was on (the offline commands write the model's output back on it), and where
a track that ends early (an End of Track event before the end of its chunk) really ends. Grammar: the
SMF spec's <delta-time> <event>, running status for channel messages, meta (FF type length data) and
sysex (F0/F7 length data) events.
"""

from __future__ import annotations

from collections.abc import Iterator

from .chunks import MidiFileError

# data bytes after a channel status, by its high nibble
_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}


def _vlq(body: bytes, position: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        if position >= len(body):
            raise MidiFileError("a variable-length number runs past the end of its track")
        byte = body[position]
        position += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, position
    raise MidiFileError("a variable-length number longer than 4 bytes")


def walk(body: bytes) -> Iterator[tuple[int, int, int, bytes, bytes]]:
    """(tick, offset of the event's delta-time, status byte, data, message) of every event, in order,
    up to and including the first End of Track. `data` is, for a meta event, its type byte and payload,
    for a channel message its data bytes, for sysex nothing; `message` is the whole event with its
    status byte (running status resolved). MidiFileError for a malformed event."""
    position, tick, running = 0, 0, 0
    while position < len(body):
        start = position
        delta, position = _vlq(body, position)
        tick += delta
        if position >= len(body):
            raise MidiFileError("a track ends inside an event")
        status = body[position]
        if status >= 0x80:
            position += 1
        elif running:
            status = running
        else:
            raise MidiFileError(f"a data byte 0x{status:02x} with no status byte before it")
        if status == 0xFF:
            if position >= len(body):
                raise MidiFileError("a track ends inside a meta event")
            kind = body[position]
            length, after = _vlq(body, position + 1)
            yield (
                tick,
                start,
                status,
                bytes((kind,)) + body[after : after + length],
                b"\xff" + body[position : after + length],
            )
            position = after + length
            if kind == 0x2F:
                return
        elif status in (0xF0, 0xF7):
            length, after = _vlq(body, position)
            yield tick, start, status, b"", bytes((status,)) + body[position : after + length]
            position = after + length
        elif status >= 0xF0:
            raise MidiFileError(f"a system message 0x{status:02x} inside a track (not allowed in a file)")
        else:
            running = status
            size = _DATA_BYTES[status & 0xF0]
            data = body[position : position + size]
            if len(data) < size:
                raise MidiFileError("a track ends inside a channel message")
            yield tick, start, status, data, bytes((status,)) + data
            position += size


def end_of_track(body: bytes) -> tuple[int, int]:
    """(tick, byte offset just past it) of the first End of Track event; (tick of the last event,
    length of the chunk) when there is none."""
    last_tick = 0
    for tick, offset, status, data, _message in walk(body):
        last_tick = tick
        if status == 0xFF and data[:1] == b"\x2f":
            return tick, offset + _event_length(body, offset)
    return last_tick, len(body)


def _event_length(body: bytes, offset: int) -> int:
    """Bytes of the End of Track event at `offset` (its delta-time, FF 2F 00)."""
    _delta, position = _vlq(body, offset)
    return position - offset + 3


def note_keys(body: bytes) -> list[tuple[int, int]]:
    """Sorted (channel, program) pairs under which the track plays notes: the program is the channel's
    last program change before the note-on (0 without one). This is the order in which the note parser
    lists the groups of notes of one chunk (by channel, then program)."""
    program = [0] * 16
    keys: set[tuple[int, int]] = set()
    for _tick, _offset, status, data, _message in walk(body):
        kind = status & 0xF0
        if kind == 0xC0 and status < 0xF0:
            program[status & 0x0F] = data[0]
        elif kind == 0x90 and status < 0xF0 and data[1] > 0:
            keys.add((status & 0x0F, program[status & 0x0F]))
    return sorted(keys)
