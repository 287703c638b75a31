"""The chunk layer of a Standard MIDI File (SMF 1.0): header, MTrk chunks, and the wrapping the reader uses.

Pure byte work, no parser library: it names the real cause when a file is not a usable SMF (no header,
SMPTE time division, a chunk cut off by the end of the file, ...), and it hands each MTrk chunk to the
note parser on its own, so every note is known to come from one chunk. Source: the MIDI 1.0 "Standard
MIDI Files" specification (RP-001): header chunk, track chunks, alien chunks to be skipped, and the
RIFF "RMID" wrapper some Windows tools write.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass


class MidiFileError(ValueError):
    """A file that is not a readable MIDI file; the message is one line naming the real cause."""


@dataclass(frozen=True)
class Chunks:
    """A file's header fields and its MTrk chunk bodies, in file order."""

    format: int  # 0: one track, 1: simultaneous tracks
    ticks_per_beat: int  # pulses per quarter note (PPQN) of the header's time division
    tracks: tuple[bytes, ...]  # the bytes of each MTrk chunk after its 8-byte chunk header
    warnings: tuple[str, ...] = ()


def _unwrap_riff(data: bytes) -> bytes:
    """The SMF inside a RIFF RMID file ("RIFF" size "RMID" then a "data" chunk), else `data`."""
    if data[:4] != b"RIFF" or data[8:12] != b"RMID":
        return data
    position = 12
    while position + 8 <= len(data):
        identifier, size = (
            data[position : position + 4],
            int.from_bytes(data[position + 4 : position + 8], "little"),
        )
        if identifier == b"data":
            return data[position + 8 : position + 8 + size]
        position += 8 + size + (size & 1)
    raise MidiFileError("a RIFF RMID file without a 'data' chunk")


def split_chunks(data: bytes) -> Chunks:
    """The header and MTrk chunks of an SMF; MidiFileError naming the cause for anything unusable.

    Alien chunks are skipped (as the spec says); a header track count that disagrees with the chunks
    found is a warning, not an error (the chunks are what the file holds).
    """
    data = _unwrap_riff(bytes(data))
    if not data:
        raise MidiFileError("an empty file (0 bytes)")
    if data[:4] != b"MThd":
        raise MidiFileError("not a MIDI file (it does not start with an 'MThd' header)")
    if len(data) < 14:
        raise MidiFileError(f"the MIDI header is cut off ({len(data)} bytes; it needs 14)")
    header_length = int.from_bytes(data[4:8], "big")
    if header_length < 6:
        raise MidiFileError(f"the MIDI header chunk is {header_length} bytes long; it needs 6")
    file_format, declared, division = struct.unpack(">HHH", data[8:14])
    if division & 0x8000:
        raise MidiFileError(
            "SMPTE time division (frames per second) is not supported; export with ticks per quarter note"
        )
    if division == 0:
        raise MidiFileError("the header gives 0 ticks per quarter note")
    if file_format == 2:
        raise MidiFileError("format 2 (independent sequences) is not supported; export as format 0 or 1")
    if file_format > 2:
        raise MidiFileError(f"unknown MIDI file format {file_format} (0, 1 or 2 exist)")
    tracks: list[bytes] = []
    warnings: list[str] = []
    position = 8 + header_length
    while position + 8 <= len(data):
        identifier = data[position : position + 4]
        length = int.from_bytes(data[position + 4 : position + 8], "big")
        body = data[position + 8 : position + 8 + length]
        if identifier == b"MTrk":
            if len(body) < length:
                raise MidiFileError(
                    f"track {len(tracks) + 1} is cut off: its chunk says {length} bytes, "
                    f"the file ends after {len(body)}"
                )
            tracks.append(body)
        elif not identifier.isascii() or not identifier.isalnum():
            warnings.append(f"{len(data) - position} bytes of garbage after the last chunk were ignored")
            break
        position += 8 + length
    if not tracks:
        raise MidiFileError(f"no track chunks (the header announces {declared})")
    if declared != len(tracks):
        warnings.append(f"the header announces {declared} tracks, the file holds {len(tracks)}")
    return Chunks(file_format, division, tuple(tracks), tuple(warnings))


def header_bytes(file_format: int, tracks: int, ticks_per_beat: int) -> bytes:
    """An MThd chunk."""
    return b"MThd" + (6).to_bytes(4, "big") + struct.pack(">HHH", file_format, tracks, ticks_per_beat)


def chunk_bytes(body: bytes) -> bytes:
    """An MTrk chunk holding `body`."""
    return b"MTrk" + len(body).to_bytes(4, "big") + body


END_OF_TRACK = b"\xff\x2f\x00"
END_MARKER = "musebridge:end-of-track:"  # + the chunk's index: a marker event at the end of each track
TRACK_LABEL = "musebridge:track:"  # + the chunk's index: the last track name, so notes name their chunk
LATE = 0x0FFFFFFF  # ticks after a track's end at which the reader closes what still sounds (max delta)


@functools.lru_cache(maxsize=4096)
def _labels(index: int, label: bool) -> bytes:
    """The marker event END_MARKER<index> (and with `label`, delta 0 and the track name
    TRACK_LABEL<index>), then the delta LATE of the closing note-offs."""
    marker = f"{END_MARKER}{index}".encode("ascii")
    out = bytes((0xFF, 0x06, len(marker))) + marker
    if label:
        name = f"{TRACK_LABEL}{index}".encode("ascii")
        out += bytes((0x00, 0xFF, 0x03, len(name))) + name
    return out + _LATE_DELTA


def _closing_events(channel: int) -> bytes:
    """A note-off for every pitch of `channel`, at delta 0 each (running status after the first)."""
    out = bytearray((0x80 | channel, 0, 0))
    for pitch in range(1, 128):
        out += bytes((0, pitch, 0))
    return bytes(out)


_CLOSING = tuple(_closing_events(channel) + b"\x00" for channel in range(16))  # + the next delta
_NOTE_ON = tuple(bytes((0x90 | channel,)) for channel in range(16))
_LATE_DELTA = bytes((0xFF, 0xFF, 0xFF, 0x7F))  # LATE as a variable-length number


def closed_body(body: bytes, index: int, label: bool = False) -> bytes:
    """An MTrk body (up to its first End of Track) made readable for the reader's rules: a marker
    END_MARKER<index> at the track's end, with `label` a track name TRACK_LABEL<index> there too, then,
    LATE ticks after the end, a note-off for every pitch of every channel the track may play notes on,
    and the end of the track. A note still sounding at the end of its track thus ends exactly LATE
    ticks after it (which is how the reader recognises and shortens it); a note-off with nothing
    sounding is ignored by the parser. The channels are those whose note-on status byte occurs anywhere
    in the chunk (a superset: such a byte may also sit in a delta-time or in a meta event's text; a
    note-on under running status follows one written out)."""
    head = body[: -len(END_OF_TRACK)] if body.endswith(END_OF_TRACK) else body + b"\x00"
    closing = [_CLOSING[channel] for channel in range(16) if _NOTE_ON[channel] in body]
    return b"".join((head, _labels(index, label), *closing, END_OF_TRACK))
