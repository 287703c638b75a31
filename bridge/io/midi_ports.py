"""The MIDI edge: one interface over JACK (JACK-Client), ALSA/CoreMIDI/WinMM (python-rtmidi) and none.

    ports = create_midi_ports("auto")          # or "alsa", "coremidi", "jack", "winmm", "none"
    ports.open(queue.SimpleQueue().put)         # on_message((status, data...), time) -> enqueue only
    ports.send_at((0x90, 60, 100), when)        # exact frame under JACK (supports_timed_output)
    ports.close()                               # releases held notes, sends all-notes-off

Times are time.perf_counter() seconds everywhere. Input callbacks run on the backend's thread (JACK's
realtime process thread, rtmidi's callback thread): `on_message` must only enqueue
(queue.SimpleQueue.put is a good choice) and never block. Malformed MIDI never raises there: it is
dropped and counted in `stats()["invalid_in"]`.

Backends:
  jack      one JACK client `musebridge` with ports `musebridge:in` and `musebridge:out`; timed output at
            exact frames (hand events over at least `output_lead` seconds ahead).
  alsa/coremidi  virtual ports "musebridge in" / "musebridge out" via python-rtmidi, or existing ports
            (--midi-in / --midi-out NAME: exact name, then unique substring).
  winmm     Windows: no virtual ports; connect to loopMIDI ports by name.
  none      no MIDI (OSC only).
  auto      the platform's native system, then JACK if a server is running (never starts one),
            else none with one log line saying why.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from musebridge.errors import UserError

log = logging.getLogger("musebridge.midi")

BACKENDS: tuple[str, ...] = ("auto", "alsa", "coremidi", "jack", "winmm", "none")
DEFAULT_CLIENT_NAME = "musebridge"
MidiCallback = Callable[[tuple[int, ...], float], None]

_DATA_LENGTHS = {0x80: 3, 0x90: 3, 0xA0: 3, 0xB0: 3, 0xC0: 2, 0xD0: 2, 0xE0: 3}
_SYSTEM_LENGTHS = {0xF1: 2, 0xF2: 3, 0xF3: 2, 0xF6: 1, 0xF8: 1, 0xFA: 1, 0xFB: 1, 0xFC: 1, 0xFE: 1, 0xFF: 1}


def midi_problem(data: Sequence[int]) -> str | None:
    """Why `data` is not one complete MIDI message, or None when it is. Never raises."""
    try:
        if not data:
            return "empty message"
        status = data[0]
        if not isinstance(status, int) or not 0x80 <= status <= 0xFF:
            return f"first byte {status!r} is not a status byte"
        for byte in data[1:-1] if status == 0xF0 else data[1:]:
            if not isinstance(byte, int) or not 0 <= byte <= 0x7F:
                return f"data byte {byte!r} out of 0..127"
        if status == 0xF0:
            if len(data) < 2 or data[-1] != 0xF7:
                return "sysex without its closing 0xF7"
            return None
        expected = _DATA_LENGTHS.get(status & 0xF0) if status < 0xF0 else _SYSTEM_LENGTHS.get(status)
        if expected is None:
            return f"undefined status byte 0x{status:02X}"
        if len(data) != expected:
            return f"status 0x{status:02X} takes {expected} bytes, got {len(data)}"
        return None
    except Exception as error:  # a weird sequence type: report, never raise
        return f"unreadable message ({error})"


def checked_midi(data: Sequence[int]) -> bytes:
    """`data` as bytes, or ValueError saying what is wrong (for the sending side)."""
    problem = midi_problem(data)
    if problem:
        raise ValueError(f"not a MIDI message {data!r}: {problem}")
    return bytes(data)


def all_notes_off_messages() -> list[bytes]:
    """Sustain off (CC 64 = 0) and All Notes Off (CC 123) on every channel."""
    messages = []
    for channel in range(16):
        messages.append(bytes((0xB0 | channel, 64, 0)))
        messages.append(bytes((0xB0 | channel, 123, 0)))
    return messages


class HeldNotes:
    """Which (channel, pitch) are sounding on an output, from the messages written to it."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def track(self, data: bytes | Sequence[int]) -> None:
        kind = data[0] & 0xF0
        if kind not in (0x80, 0x90) or len(data) < 3:
            return
        key = ((data[0] & 0x0F) << 7) | data[1]
        if kind == 0x90 and data[2] > 0:
            self.counts[key] = self.counts.get(key, 0) + 1
        elif key in self.counts:
            left = self.counts[key] - 1
            if left > 0:
                self.counts[key] = left
            else:
                del self.counts[key]

    def release_messages(self) -> list[bytes]:
        """One note-off per sounding note (as many as were started), then forget them all."""
        messages = []
        for key, count in self.counts.items():
            message = bytes((0x80 | (key >> 7), key & 0x7F, 0))
            messages.extend([message] * count)
        self.counts.clear()
        return messages


@runtime_checkable
class MidiPorts(Protocol):
    """What the runtime sees of a MIDI backend."""

    name: str
    backend: str
    supports_timed_output: bool

    def open(self, on_message: MidiCallback) -> None: ...

    def send_now(self, data: Sequence[int]) -> None: ...

    def send_at(self, data: Sequence[int], time: float) -> None: ...

    def panic(self) -> None: ...

    def close(self) -> None: ...

    def stats(self) -> dict[str, int]: ...


class NullMidiPorts:
    """No MIDI: everything sent is counted and dropped (OSC-only operation)."""

    backend = "none"
    supports_timed_output = False
    output_lead = 0.0

    def __init__(self, reason: str = "--midi-backend none") -> None:
        self.name = "no MIDI"
        self.reason = reason
        self.dropped = 0
        self.alive = True

    def open(self, on_message: MidiCallback) -> None:
        return None

    def send_now(self, data: Sequence[int]) -> None:
        checked_midi(data)
        self.dropped += 1

    def send_at(self, data: Sequence[int], time: float) -> None:
        self.send_now(data)

    def panic(self) -> None:
        return None

    def close(self) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {"dropped_out": self.dropped}


# -- port names -------------------------------------------------------------------------------------
def match_port(wanted: str, available: Sequence[str], kind: str) -> int:
    """Index of the port named `wanted`: exact name, else the one port containing it (any case).

    UserError listing the available ports when none or several match.
    """
    if wanted in available:
        return list(available).index(wanted)
    lowered = wanted.lower()
    matches = [i for i, name in enumerate(available) if lowered in name.lower()]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(repr(name) for name in available) or "none"
    if matches:
        found = ", ".join(repr(available[i]) for i in matches)
        raise UserError(f"MIDI {kind} port {wanted!r} is ambiguous: {found}; give more of the name")
    raise UserError(f"no MIDI {kind} port matches {wanted!r}; available {kind} ports: {listing}")


# -- availability -----------------------------------------------------------------------------------
@dataclass
class BackendListing:
    """What `musebridge ports` prints for one backend."""

    backend: str
    available: bool
    reason: str = ""
    inputs: list[str] = field(default_factory=list)  # ports we can read from (sources)
    outputs: list[str] = field(default_factory=list)  # ports we can write to (destinations)


def alsa_problem() -> str | None:
    if not sys.platform.startswith("linux"):
        return "ALSA exists only on Linux"
    if not os.path.exists("/dev/snd/seq"):
        return "no ALSA sequencer (/dev/snd/seq missing)"
    return None


def jack_problem() -> str | None:
    """None when a JACK server answers (checked by opening and closing a client; never starts one)."""
    try:
        from musebridge.io.jack_midi import jack_server_running
    except Exception as error:  # JACK-Client or libjack missing
        return f"JACK unavailable ({error})"
    return None if jack_server_running() else "no JACK server running"


def native_backend() -> str | None:
    """The platform's own MIDI system with virtual ports."""
    if sys.platform.startswith("linux"):
        return "alsa"
    if sys.platform == "darwin":
        return "coremidi"
    return None


def resolve_backend(backend: str, midi_in: str | None = None, midi_out: str | None = None) -> tuple[str, str]:
    """(concrete backend, why) for `backend`; 'auto' tries native, then JACK, then none."""
    if backend not in BACKENDS:
        raise UserError(f"unknown MIDI backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend, f"--midi-backend {backend}"
    reasons = []
    native = native_backend()
    if native == "alsa":
        problem = alsa_problem()
        if problem is None:
            return "alsa", "ALSA sequencer found"
        reasons.append(problem)
    elif native == "coremidi":
        return "coremidi", "macOS CoreMIDI"
    elif sys.platform == "win32":
        if midi_in or midi_out:
            return "winmm", "Windows MIDI ports named with --midi-in/--midi-out"
        reasons.append("Windows has no virtual MIDI ports (create loopMIDI ports, pass --midi-in/--midi-out)")
    problem = jack_problem()
    if problem is None:
        return "jack", "JACK server running"
    reasons.append(problem)
    return "none", "no MIDI system: " + " and ".join(reasons) + "; OSC only"


def create_midi_ports(
    backend: str = "auto",
    *,
    client_name: str = DEFAULT_CLIENT_NAME,
    midi_in: str | None = None,
    midi_out: str | None = None,
) -> MidiPorts:
    """An unopened MidiPorts for `backend` (auto resolved here, with one log line when it falls to none)."""
    concrete, why = resolve_backend(backend, midi_in, midi_out)
    if concrete == "none":
        if backend == "auto":
            log.warning("%s", why)
        return NullMidiPorts(why)
    log.info("MIDI backend %s (%s)", concrete, why)
    if concrete == "jack":
        from musebridge.io.jack_midi import JackMidiPorts

        return JackMidiPorts(client_name=client_name, connect_in=midi_in, connect_out=midi_out)
    from musebridge.io.rtmidi_ports import RtMidiPorts

    return RtMidiPorts(concrete, client_name=client_name, midi_in=midi_in, midi_out=midi_out)


def list_backends(backends: Iterable[str] | None = None) -> list[BackendListing]:
    """Ports of each backend (every concrete one by default), or why it is unavailable."""
    listings = []
    for backend in backends or [b for b in BACKENDS if b not in ("auto", "none")]:
        if backend == "jack":
            from musebridge.io.jack_midi import list_jack_ports

            listings.append(list_jack_ports())
        else:
            from musebridge.io.rtmidi_ports import list_rtmidi_ports

            listings.append(list_rtmidi_ports(backend))
    return listings
