"""Raw MIDI bytes <-> typed messages, without exceptions on bad input.

`parse_midi(data)` takes ONE whole message (what rtmidi and JACK deliver) and returns a typed
message or a `MidiError` value describing what is wrong (stray data bytes, truncated or overlong
messages, undefined status bytes, broken sysex). It never raises, so a garbage byte can never kill an
input thread.

Running status (a message that reuses the previous status byte) is NOT supported: rtmidi and JACK
hand over whole messages with their status byte, so a message that starts with a data byte is reported
as an error ("stray data byte").

A note-on with velocity 0 is parsed as a NoteOff (the MIDI convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NOTE_OFF = 0x80
NOTE_ON = 0x90
POLY_AFTERTOUCH = 0xA0
CONTROL_CHANGE = 0xB0
PROGRAM_CHANGE = 0xC0
CHANNEL_AFTERTOUCH = 0xD0
PITCH_BEND = 0xE0

SYSEX_START = 0xF0
MTC_QUARTER_FRAME = 0xF1
SONG_POSITION = 0xF2
SONG_SELECT = 0xF3
TUNE_REQUEST = 0xF6
SYSEX_END = 0xF7
CLOCK = 0xF8
START = 0xFA
CONTINUE = 0xFB
STOP = 0xFC
ACTIVE_SENSING = 0xFE
RESET = 0xFF

CC_ALL_SOUND_OFF = 120
CC_ALL_NOTES_OFF = 123

_CHANNEL_DATA_LENGTH = {
    NOTE_OFF: 2,
    NOTE_ON: 2,
    POLY_AFTERTOUCH: 2,
    CONTROL_CHANGE: 2,
    PROGRAM_CHANGE: 1,
    CHANNEL_AFTERTOUCH: 1,
    PITCH_BEND: 2,
}
_SYSTEM_DATA_LENGTH = {MTC_QUARTER_FRAME: 1, SONG_POSITION: 2, SONG_SELECT: 1, TUNE_REQUEST: 0}
_REALTIME_NAMES = {
    CLOCK: "clock",
    START: "start",
    CONTINUE: "continue",
    STOP: "stop",
    ACTIVE_SENSING: "active_sensing",
    RESET: "reset",
}


@dataclass(frozen=True, slots=True)
class NoteOn:
    channel: int
    pitch: int
    velocity: int


@dataclass(frozen=True, slots=True)
class NoteOff:
    channel: int
    pitch: int
    velocity: int = 0


@dataclass(frozen=True, slots=True)
class ControlChange:
    channel: int
    control: int
    value: int


@dataclass(frozen=True, slots=True)
class OtherChannelMessage:
    """Program change, aftertouch or pitch bend: forwarded as is, never interpreted."""

    channel: int
    kind: int  # the status nibble, e.g. 0xE0 for pitch bend
    data: tuple[int, ...]  # the whole message, status byte included


@dataclass(frozen=True, slots=True)
class Realtime:
    """A one-byte system realtime message: clock, start, continue, stop, active_sensing, reset."""

    kind: str


@dataclass(frozen=True, slots=True)
class SongPosition:
    """Song position pointer: a count of MIDI beats (sixteenth notes) since the song start."""

    sixteenths: int

    @property
    def beats(self) -> float:
        return self.sixteenths / 4.0


@dataclass(frozen=True, slots=True)
class SystemMessage:
    """Sysex, MTC quarter frame, song select or tune request: recognised, not interpreted."""

    data: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MidiError:
    """Bytes that are not one valid MIDI message; `reason` says why."""

    reason: str
    data: tuple[int, ...]


MidiMessage = NoteOn | NoteOff | ControlChange | OtherChannelMessage | Realtime | SongPosition | SystemMessage


def _hex(data: Sequence[int]) -> str:
    shown = " ".join(f"{b:02X}" if isinstance(b, int) and 0 <= b <= 255 else repr(b) for b in data[:8])
    return shown + (" ..." if len(data) > 8 else "")


def parse_midi(data: Sequence[int]) -> MidiMessage | MidiError:
    """Parse one whole MIDI message; bad input gives a MidiError value, never an exception."""
    try:
        raw = tuple(data)
    except TypeError:
        return MidiError("not a byte sequence", ())
    if not raw:
        return MidiError("empty message", raw)
    for byte in raw:
        if not isinstance(byte, int) or isinstance(byte, bool) or not 0 <= byte <= 255:
            return MidiError(f"not a byte: {byte!r}", tuple(b for b in raw if isinstance(b, int)))
    status = raw[0]
    if status < 0x80:
        return MidiError(f"stray data byte {_hex(raw)} (running status is not supported)", raw)
    if status == SYSEX_START:
        if raw[-1] != SYSEX_END or len(raw) < 2:
            return MidiError(f"unterminated sysex {_hex(raw)}", raw)
        if any(b >= 0x80 for b in raw[1:-1]):
            return MidiError(f"status byte inside sysex {_hex(raw)}", raw)
        return SystemMessage(raw)
    body = raw[1:]
    if any(b >= 0x80 for b in body):
        return MidiError(f"status byte where a data byte belongs: {_hex(raw)}", raw)
    if status < 0xF0:
        kind = status & 0xF0
        expected = _CHANNEL_DATA_LENGTH[kind]
        if len(body) != expected:
            what = "truncated" if len(body) < expected else "overlong"
            return MidiError(f"{what} message {_hex(raw)}: expected {expected} data bytes", raw)
        channel = status & 0x0F
        if kind == NOTE_ON:
            if body[1] == 0:
                return NoteOff(channel, body[0], 0)
            return NoteOn(channel, body[0], body[1])
        if kind == NOTE_OFF:
            return NoteOff(channel, body[0], body[1])
        if kind == CONTROL_CHANGE:
            return ControlChange(channel, body[0], body[1])
        return OtherChannelMessage(channel, kind, raw)
    if status in _REALTIME_NAMES:
        if body:
            return MidiError(f"overlong realtime message {_hex(raw)}", raw)
        return Realtime(_REALTIME_NAMES[status])
    if status in _SYSTEM_DATA_LENGTH:
        expected = _SYSTEM_DATA_LENGTH[status]
        if len(body) != expected:
            what = "truncated" if len(body) < expected else "overlong"
            return MidiError(f"{what} message {_hex(raw)}: expected {expected} data bytes", raw)
        if status == SONG_POSITION:
            return SongPosition(body[0] | (body[1] << 7))
        return SystemMessage(raw)
    if status == SYSEX_END:
        return MidiError("sysex end without start", raw)
    return MidiError(f"undefined status byte {status:02X}", raw)


def _check(name: str, value: int, low: int, high: int) -> int:
    if not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be {low}..{high}, got {value!r}")
    return value


def note_on(channel: int, pitch: int, velocity: int) -> tuple[int, int, int]:
    """Note-on bytes (velocity 1..127; use note_off for velocity 0)."""
    return (
        NOTE_ON | _check("channel", channel, 0, 15),
        _check("pitch", pitch, 0, 127),
        _check("velocity", velocity, 1, 127),
    )


def note_off(channel: int, pitch: int, velocity: int = 0) -> tuple[int, int, int]:
    """Note-off bytes (status 0x80)."""
    return (
        NOTE_OFF | _check("channel", channel, 0, 15),
        _check("pitch", pitch, 0, 127),
        _check("velocity", velocity, 0, 127),
    )


def control_change(channel: int, control: int, value: int) -> tuple[int, int, int]:
    return (
        CONTROL_CHANGE | _check("channel", channel, 0, 15),
        _check("control", control, 0, 127),
        _check("value", value, 0, 127),
    )


def all_notes_off(channel: int) -> tuple[int, int, int]:
    """CC 123 (all notes off) on one channel."""
    return control_change(channel, CC_ALL_NOTES_OFF, 0)


def song_position(sixteenths: int) -> tuple[int, int, int]:
    _check("song position", sixteenths, 0, 0x3FFF)
    return (SONG_POSITION, sixteenths & 0x7F, sixteenths >> 7)


def realtime(kind: str) -> tuple[int]:
    """One realtime byte by name: clock, start, continue, stop, active_sensing, reset."""
    for status, name in _REALTIME_NAMES.items():
        if name == kind:
            return (status,)
    raise ValueError(f"unknown realtime message {kind!r}")
