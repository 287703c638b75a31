"""MIDI byte parsing: typed messages, and garbage reported as a value, never raised."""

from __future__ import annotations

import random

import pytest

from musebridge.core import midi_bytes as mb


def test_channel_messages_parse_to_typed_values() -> None:
    assert mb.parse_midi([0x91, 60, 100]) == mb.NoteOn(1, 60, 100)
    assert mb.parse_midi([0x91, 60, 0]) == mb.NoteOff(1, 60, 0)  # velocity 0 is a note-off
    assert mb.parse_midi((0x8F, 61, 64)) == mb.NoteOff(15, 61, 64)
    assert mb.parse_midi([0xB0, 64, 127]) == mb.ControlChange(0, 64, 127)
    assert mb.parse_midi([0xC2, 5]) == mb.OtherChannelMessage(2, 0xC0, (0xC2, 5))
    assert mb.parse_midi([0xE0, 0, 64]) == mb.OtherChannelMessage(0, 0xE0, (0xE0, 0, 64))


def test_system_messages() -> None:
    assert mb.parse_midi([0xF8]) == mb.Realtime("clock")
    assert mb.parse_midi([0xFA]) == mb.Realtime("start")
    assert mb.parse_midi([0xFB]) == mb.Realtime("continue")
    assert mb.parse_midi([0xFC]) == mb.Realtime("stop")
    spp = mb.parse_midi([0xF2, 0x10, 0x01])  # 16 + 128 = 144 sixteenths = 36 beats
    assert spp == mb.SongPosition(144) and spp.beats == 36.0
    assert isinstance(mb.parse_midi([0xF0, 0x7E, 0x01, 0xF7]), mb.SystemMessage)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "empty"),
        ([60, 100], "stray data byte"),
        ([0x90, 60], "truncated"),
        ([0x90, 60, 100, 1], "overlong"),
        ([0x90, 0x90, 100], "status byte where a data byte"),
        ([0xF4], "undefined status"),
        ([0xFD], "undefined status"),
        ([0xF7], "sysex end without start"),
        ([0xF0, 1, 2], "unterminated sysex"),
        ([0xF0, 1, 0x90, 0xF7], "status byte inside sysex"),
        ([0xF8, 1], "overlong realtime"),
        ([0xF2, 1], "truncated"),
        ([0x90, 300, 1], "not a byte"),
        ([0x90, -1, 1], "not a byte"),
        (["x"], "not a byte"),
    ],
)
def test_garbage_is_an_error_value(data: list, fragment: str) -> None:
    result = mb.parse_midi(data)
    assert isinstance(result, mb.MidiError)
    assert fragment in result.reason


def test_random_bytes_never_raise() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        data = [rng.randrange(256) for _ in range(rng.randrange(0, 6))]
        result = mb.parse_midi(data)
        assert isinstance(result, mb.MidiError | mb.MidiMessage)
    assert isinstance(mb.parse_midi(None), mb.MidiError)  # type: ignore[arg-type]


def test_builders_round_trip_and_check_ranges() -> None:
    assert mb.parse_midi(mb.note_on(3, 64, 90)) == mb.NoteOn(3, 64, 90)
    assert mb.parse_midi(mb.note_off(3, 64)) == mb.NoteOff(3, 64, 0)
    assert mb.all_notes_off(9) == (0xB9, 123, 0)
    assert mb.parse_midi(mb.song_position(300)) == mb.SongPosition(300)
    assert mb.realtime("stop") == (0xFC,)
    with pytest.raises(ValueError):
        mb.note_on(16, 60, 100)
    with pytest.raises(ValueError):
        mb.note_on(0, 60, 0)
