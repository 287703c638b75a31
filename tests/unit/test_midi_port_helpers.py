"""The backend-independent parts of the MIDI edge: message checks, held notes, port matching, none."""

from __future__ import annotations

import pytest

from musebridge.errors import UserError
from musebridge.io.midi_ports import (
    HeldNotes,
    MidiPorts,
    NullMidiPorts,
    all_notes_off_messages,
    checked_midi,
    create_midi_ports,
    match_port,
    midi_problem,
    resolve_backend,
)


@pytest.mark.parametrize(
    "message",
    [(0x90, 60, 100), (0x80, 60, 0), (0xC3, 5), (0xD0, 1), (0xE0, 0, 64), (0xF0, 1, 2, 0xF7), (0xF8,),
     (0xFA,), (0xF2, 0, 8), (0xF1, 3)],
)
def test_complete_messages_pass(message):
    assert midi_problem(message) is None
    assert checked_midi(message) == bytes(message)


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        ((), "empty"),
        ((0x40, 1, 2), "not a status byte"),
        ((0x90, 60), "takes 3 bytes"),
        ((0x90, 60, 1, 2), "takes 3 bytes"),
        ((0x90, 128, 1), "out of 0..127"),
        ((0xF0, 1, 2), "0xF7"),
        ((0xF4,), "undefined"),
        ((0x90, -1, 3), "out of 0..127"),
        ((0x90, "a", 3), "out of 0..127"),
        ((256, 1, 1), "not a status byte"),
        (5, "unreadable"),
    ],
)
def test_malformed_messages_are_described_never_raised(message, fragment):
    assert fragment in midi_problem(message)
    with pytest.raises(ValueError, match="not a MIDI message"):
        checked_midi(message)


def test_held_notes_release_what_is_still_sounding():
    held = HeldNotes()
    for message in [(0x90, 60, 100), (0x90, 60, 90), (0x91, 62, 80), (0x90, 64, 70), (0x80, 60, 0),
                    (0x90, 64, 0), (0xB0, 64, 127), (0x80, 99, 0)]:
        held.track(bytes(message))
    assert sorted(held.release_messages()) == [bytes((0x80, 60, 0)), bytes((0x81, 62, 0))]
    assert held.release_messages() == []


def test_all_notes_off_covers_every_channel():
    messages = all_notes_off_messages()
    assert {(m[0] & 0x0F) for m in messages} == set(range(16))
    assert bytes((0xB5, 123, 0)) in messages and bytes((0xB5, 64, 0)) in messages


def test_match_port_exact_then_unique_substring():
    ports = ["loopMIDI Port 1", "loopMIDI Port 10", "Midi Through"]
    assert match_port("loopMIDI Port 1", ports, "input") == 0
    assert match_port("through", ports, "input") == 2
    with pytest.raises(UserError, match="ambiguous"):
        match_port("loopMIDI", ports, "input")
    with pytest.raises(UserError, match="no MIDI output port matches 'x'; available output ports: 'loopMIDI"):
        match_port("x", ports, "output")
    with pytest.raises(UserError, match="available input ports: none"):
        match_port("x", [], "input")


def test_none_backend_drops_and_counts():
    ports = create_midi_ports("none")
    assert isinstance(ports, NullMidiPorts) and isinstance(ports, MidiPorts)
    ports.open(lambda data, when: None)
    ports.send_now((0x90, 1, 1))
    ports.send_at((0x80, 1, 0), 1.0)
    with pytest.raises(ValueError):
        ports.send_now((0x90, 1))
    assert ports.stats() == {"dropped_out": 2}
    ports.close()


def test_unknown_backend_is_a_user_error():
    with pytest.raises(UserError, match="unknown MIDI backend 'beos'"):
        resolve_backend("beos")
    assert resolve_backend("jack") == ("jack", "--midi-backend jack")


def test_an_unavailable_backend_asked_for_by_name_is_a_clear_user_error():
    from musebridge.io.midi_ports import alsa_problem

    if alsa_problem() is None:
        pytest.skip("this machine has an ALSA sequencer")
    expected = r"MIDI backend alsa unavailable: no ALSA sequencer \(/dev/snd/seq missing\)"
    with pytest.raises(UserError, match=expected):
        create_midi_ports("alsa").open(lambda data, when: None)


def test_winmm_needs_named_ports():
    from musebridge.io.rtmidi_ports import RtMidiPorts

    with pytest.raises(UserError, match="winmm"):
        RtMidiPorts("winmm").open(lambda data, when: None)
