"""MIDI through the device patcher, run message by message on its own boxes and patch cords.

A small interpreter for the Max objects on the MIDI path (midiselect, trigger, zl rev, route, append,
gate, midiformat, prepend) follows the committed MuseBridge.maxpat: played notes must reach midiout
without the `js` box (it runs in Max's low-priority thread), note-offs must pass a closed thru gate,
and every non-note message must leave byte for byte. The object semantics are those of the Max
reference (right-to-left output order; midiselect: selected notes out outlet 0 with their channel out
outlet 6 first, everything unselected as raw bytes out outlet 7).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from musebridge.device.build import boxes_by_id, object_class

ROOT = Path(__file__).resolve().parents[2]
PATCHER = json.loads((ROOT / "max_for_live" / "MuseBridge.maxpat").read_text(encoding="utf-8"))


class Patch:
    """The MIDI part of the patcher, run synchronously (depth first, as Max does)."""

    def __init__(self, patcher: dict[str, Any]) -> None:
        self.boxes = boxes_by_id(patcher)
        self.cords: dict[tuple[str, int], list[tuple[str, int]]] = {}
        for entry in patcher["patcher"]["lines"]:
            (src, outlet), (dst, inlet) = entry["patchline"]["source"], entry["patchline"]["destination"]
            self.cords.setdefault((src, outlet), []).append((dst, inlet))
        self.state: dict[str, Any] = {}
        self.midi_out: list[int] = []
        self.to_js: list[list[Any]] = []
        for box_id, box in self.boxes.items():
            if object_class(box) == "gate":
                words = box["text"].split()
                self.state[box_id] = int(words[2]) if len(words) > 2 else 0
            if object_class(box) == "midiformat":
                self.state[box_id] = 1  # MIDI channel

    def only(self, kind: str) -> str:
        (box_id,) = [i for i, box in self.boxes.items() if object_class(box) == kind]
        return box_id

    def emit(self, box_id: str, outlet: int, message: Any) -> None:
        # Max orders fanned-out cords right to left by destination position; the device uses trigger.
        targets = self.cords.get((box_id, outlet), [])
        targets = sorted(targets, key=lambda t: -self.boxes[t[0]]["patching_rect"][0])
        for dst, inlet in targets:
            self.receive(dst, inlet, message)

    def receive(self, box_id: str, inlet: int, message: Any) -> None:
        box = self.boxes[box_id]
        kind, args = object_class(box), str(box.get("text", "")).split()[1:]
        items = message if isinstance(message, list) else [message]
        if kind == "midiselect":
            self.select(box_id, items)
        elif kind in ("t", "trigger"):
            for outlet in reversed(range(len(args))):
                self.emit(box_id, outlet, message)
        elif kind == "zl" and args[0] == "rev":
            self.emit(box_id, 0, list(reversed(items)))
        elif kind == "route":
            if items[0] == int(args[0]):
                rest = items[1:]
                self.emit(box_id, 0, rest[0] if len(rest) == 1 else rest)
            else:
                self.emit(box_id, 1, message)
        elif kind == "append":
            self.emit(box_id, 0, [*items, *(int(a) for a in args)])
        elif kind == "gate":
            if inlet == 0:
                self.state[box_id] = int(items[0])
            elif self.state[box_id]:
                self.emit(box_id, self.state[box_id] - 1, message)
        elif kind == "midiformat":
            if inlet == 6:
                self.state[box_id] = int(items[0])
            elif inlet == 0:
                pitch, velocity = items
                for byte in (0x90 | (self.state[box_id] - 1), pitch, velocity):
                    self.emit(box_id, 0, byte)
            else:
                raise AssertionError(f"the MIDI path feeds midiformat inlet {inlet}")
        elif kind == "prepend":
            self.emit(box_id, 0, [args[0], *items])
        elif kind == "midiout":
            self.midi_out.append(int(message))
        elif kind == "js":
            self.to_js.append(items)
        else:
            raise AssertionError(f"{box_id} ({kind}) is on the MIDI path but not modelled here")

    def select(self, box_id: str, message: list[int]) -> None:
        status = message[0] & 0xF0
        if status in (0x80, 0x90):
            velocity = 0 if status == 0x80 else message[2]
            self.emit(box_id, 6, (message[0] & 0x0F) + 1)
            self.emit(box_id, 0, [message[1], velocity])
        else:
            for byte in message:
                self.emit(box_id, 7, byte)

    def play(self, *message: int) -> list[int]:
        """Send one MIDI message into midiin; the bytes that left through midiout."""
        self.midi_out = []
        self.emit(self.only("midiin"), 0, list(message))
        return self.midi_out

    def script_sets_gate(self, value: int) -> None:
        self.emit(self.only("js"), 5, value)


def test_played_notes_reach_midiout_without_the_script_which_gets_copies() -> None:
    patch = Patch(PATCHER)
    assert patch.play(0x90, 60, 100) == [0x90, 60, 100]
    assert patch.play(0x92, 64, 90) == [0x92, 64, 90]  # the channel is kept
    assert patch.play(0x80, 60, 40) == [0x90, 60, 0]  # a note-off leaves as velocity 0
    assert patch.to_js == [["note_in", 60, 100], ["note_in", 64, 90], ["note_in", 60, 0]]


def test_a_closed_gate_holds_note_ons_but_never_a_note_off() -> None:
    patch = Patch(PATCHER)
    assert patch.play(0x90, 60, 100) == [0x90, 60, 100]
    patch.script_sets_gate(0)  # monitor off in a model mode: the player's notes stay home
    assert patch.play(0x90, 62, 100) == []
    assert patch.play(0x90, 60, 0) == [0x90, 60, 0]  # the note that got through still ends
    assert patch.play(0x80, 62, 0) == [0x90, 62, 0]  # a note-off on its own is harmless
    patch.script_sets_gate(1)
    assert patch.play(0x90, 62, 100) == [0x90, 62, 100]
    assert [m[1:] for m in patch.to_js] == [[60, 100], [62, 100], [60, 0], [62, 0], [62, 100]]


@pytest.mark.parametrize(
    "message",
    [
        (0xE0, 0x00, 0x40),  # pitch bend centre
        (0xE3, 0x7F, 0x3F),  # 14-bit pitch bend, LSB kept
        (0xB0, 64, 127),  # sustain pedal
        (0xB5, 1, 33),  # mod wheel on channel 6
        (0xA0, 60, 20),  # polyphonic key pressure
        (0xD0, 99),  # channel pressure
        (0xC0, 12),  # program change
        (0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7),  # SysEx
    ],
)
def test_every_non_note_message_passes_byte_for_byte_and_skips_the_script(message: tuple[int, ...]) -> None:
    patch = Patch(PATCHER)
    patch.script_sets_gate(0)
    assert patch.play(*message) == list(message)
    assert patch.to_js == []
