"""python-rtmidi backends of MidiPorts: ALSA sequencer, CoreMIDI, WinMM (and rtmidi-on-JACK for tests).

Virtual ports "<name> in" / "<name> out" by default; with --midi-in / --midi-out NAME an existing port
is opened instead (exact name, then unique substring; the Windows/loopMIDI path, since WinMM has no
virtual ports). Incoming messages are stamped with time.perf_counter() in rtmidi's callback thread.
rtmidi cannot schedule output, so `send_at` is served by a small timer thread (accuracy of a Python
thread wake-up, typically well under a millisecond, not sample-exact): supports_timed_output = False.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence

import rtmidi

from musebridge.errors import UserError
from musebridge.io.midi_ports import (
    DEFAULT_CLIENT_NAME,
    BackendListing,
    HeldNotes,
    MidiCallback,
    all_notes_off_messages,
    alsa_problem,
    checked_midi,
    match_port,
    midi_problem,
)

log = logging.getLogger("musebridge.midi.rtmidi")

RTMIDI_APIS = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
    "rtmidi-jack": rtmidi.API_UNIX_JACK,  # not offered to users (JACK uses JACK-Client); for tests
}
_CLOSE_FLUSH_S = 0.05
_VIRTUAL = {"alsa", "coremidi", "rtmidi-jack"}


def _api_problem(backend: str) -> str | None:
    api = RTMIDI_APIS.get(backend)
    if api is None:
        return f"not an rtmidi backend: {backend}"
    if api not in rtmidi.get_compiled_api():
        return f"python-rtmidi was built without {rtmidi.get_api_name(api)} support"
    if backend == "alsa":
        return alsa_problem()
    return None


def list_rtmidi_ports(backend: str) -> BackendListing:
    """Input and output ports that rtmidi sees for `backend`, or why it cannot."""
    problem = _api_problem(backend)
    if problem:
        return BackendListing(backend, False, problem)
    try:
        probe_in = rtmidi.MidiIn(RTMIDI_APIS[backend], "musebridge-ports")
        probe_out = rtmidi.MidiOut(RTMIDI_APIS[backend], "musebridge-ports")
        listing = BackendListing(backend, True, "", probe_in.get_ports(), probe_out.get_ports())
        probe_in.delete()
        probe_out.delete()
    except rtmidi.RtMidiError as error:
        return BackendListing(backend, False, str(error).strip().splitlines()[0])
    if backend == "winmm":
        listing.reason = "no virtual ports on Windows: name loopMIDI ports with --midi-in/--midi-out"
    return listing


class _TimedSender(threading.Thread):
    """Sends (time, message) at its perf_counter time on its own thread."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        super().__init__(name="musebridge-midi-timer", daemon=True)
        self._send = send
        self._heap: list[tuple[float, int, bytes]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        self.errors = 0

    def schedule(self, when: float, message: bytes) -> None:
        with self._wake:
            heapq.heappush(self._heap, (when, next(self._order), message))
            self._wake.notify()

    def drop_all(self) -> int:
        with self._wake:
            dropped = len(self._heap)
            self._heap.clear()
            return dropped

    def pending(self) -> int:
        return len(self._heap)

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self.join(timeout=1.0)

    def run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping:
                    if self._heap:
                        delay = self._heap[0][0] - time.perf_counter()
                        if delay <= 0:
                            break
                        self._wake.wait(min(delay, 0.5))
                    else:
                        self._wake.wait(0.5)
                if self._stopping:
                    return
                _, _, message = heapq.heappop(self._heap)
            try:
                self._send(message)
            except Exception:
                self.errors += 1


class RtMidiPorts:
    """An rtmidi MidiIn + MidiOut pair (see the module doc)."""

    supports_timed_output = False
    output_lead = 0.0

    def __init__(
        self,
        backend: str,
        client_name: str = DEFAULT_CLIENT_NAME,
        midi_in: str | None = None,
        midi_out: str | None = None,
    ) -> None:
        if backend not in RTMIDI_APIS:
            raise UserError(f"unknown rtmidi backend {backend!r}")
        self.backend = backend
        self.client_name = client_name
        self.midi_in_name = midi_in
        self.midi_out_name = midi_out
        self.name = f"{client_name} ({backend})"
        self.input_port_name = ""
        self.output_port_name = ""
        self.alive = False
        self._midi_in: rtmidi.MidiIn | None = None
        self._midi_out: rtmidi.MidiOut | None = None
        self._on_message: MidiCallback | None = None
        self._lock = threading.Lock()
        self._held = HeldNotes()
        self._timer: _TimedSender | None = None
        self._missing: set[str] = set()  # "input"/"output": a named port found gone (poll)
        self._counts = dict.fromkeys(("received", "invalid_in", "sent", "dropped_out", "callback_errors"), 0)

    def open(self, on_message: MidiCallback) -> None:
        """Open (virtual or named) input and output ports; UserError when the system or a port is missing."""
        problem = _api_problem(self.backend)
        if problem:
            raise UserError(f"MIDI backend {self.backend} unavailable: {problem}")
        if self.backend not in _VIRTUAL and not (self.midi_in_name and self.midi_out_name):
            raise UserError(
                f"{self.backend} has no virtual MIDI ports: create two loopMIDI ports and pass "
                "--midi-in NAME --midi-out NAME"
            )
        self._on_message = on_message
        api = RTMIDI_APIS[self.backend]
        try:
            midi_in = rtmidi.MidiIn(api, self.client_name)
            midi_out = rtmidi.MidiOut(api, self.client_name)
        except rtmidi.RtMidiError as error:
            raise UserError(f"cannot open {self.backend} MIDI: {str(error).strip()}") from None
        midi_in.ignore_types(sysex=False, timing=False, active_sense=True)
        try:
            self.input_port_name = self._open_one(midi_in, self.midi_in_name, "input", "in")
            self.output_port_name = self._open_one(midi_out, self.midi_out_name, "output", "out")
        except BaseException:
            midi_in.delete()
            midi_out.delete()
            raise
        midi_in.set_callback(self._on_input)
        midi_in.set_error_callback(self._on_error)
        midi_out.set_error_callback(self._on_error)
        self._midi_in, self._midi_out = midi_in, midi_out
        self._timer = _TimedSender(self._write)
        self._timer.start()
        self.alive = True
        log.info("MIDI (%s): in %r, out %r", self.backend, self.input_port_name, self.output_port_name)

    def _open_one(
        self, port: rtmidi.MidiIn | rtmidi.MidiOut, wanted: str | None, kind: str, suffix: str
    ) -> str:
        if wanted is None:
            name = f"{self.client_name} {suffix}"
            port.open_virtual_port(name)
            return name
        available = port.get_ports()
        index = match_port(wanted, available, kind)
        port.open_port(index, f"{self.client_name} {suffix}")
        return available[index]

    def close(self) -> None:
        """Stop the timer, release held notes, all-notes-off, close both ports."""
        if self._timer is not None:
            self._timer.stop()
            self._counts["dropped_out"] += self._timer.drop_all()
            self._timer = None
        if self._midi_out is not None:
            for message in self._held.release_messages() + all_notes_off_messages():
                self._write(message)
            time.sleep(_CLOSE_FLUSH_S)  # some APIs (JACK, CoreMIDI) send from a buffer: let it drain
        for port in (self._midi_in, self._midi_out):
            if port is not None:
                try:
                    port.close_port()
                    port.delete()
                except rtmidi.RtMidiError as error:
                    log.warning("MIDI: closing a port failed: %s", error)
        self._midi_in = self._midi_out = None
        self.alive = False

    # -- output -----------------------------------------------------------------------------------
    def _write(self, message: bytes) -> None:
        with self._lock:
            if self._midi_out is None:
                self._counts["dropped_out"] += 1
                return
            try:
                self._midi_out.send_message(message)
            except Exception as error:
                self._counts["dropped_out"] += 1
                log.warning("MIDI: send failed: %s", error)
                return
            self._held.track(message)
            self._counts["sent"] += 1

    def send_now(self, data: Sequence[int]) -> None:
        """Send at once. ValueError if `data` is not one MIDI message."""
        self._write(checked_midi(data))

    def send_at(self, data: Sequence[int], time: float) -> None:
        """Send at perf_counter `time` from the timer thread (at once if already due)."""
        message = checked_midi(data)
        if self._timer is None:
            self._counts["dropped_out"] += 1
            return
        self._timer.schedule(float(time), message)

    def panic(self) -> None:
        """Drop scheduled output, note-off every held note, sustain off + all notes off."""
        if self._timer is not None:
            self._counts["dropped_out"] += self._timer.drop_all()
        with self._lock:
            held = self._held.release_messages()
        for message in held + all_notes_off_messages():
            self._write(message)

    # -- watching (the daemon's watch thread, every second or so) ----------------------------------
    def poll(self) -> list[tuple[str, str]]:
        """A named port (--midi-in/--midi-out) that disappeared is reported once ("lost", why) and,
        when a port of that name is listed again, opened again ("back", what): rtmidi gives no
        notice of either, so the port lists are polled. Virtual ports are ours and cannot vanish."""
        changes: list[tuple[str, str]] = []
        for port, wanted, kind, suffix in ((self._midi_in, self.midi_in_name, "input", "in"),
                                           (self._midi_out, self.midi_out_name, "output", "out")):
            if port is None or wanted is None:
                continue
            try:
                available = port.get_ports()
                match_port(wanted, available, kind)
                present = True
            except UserError:
                present = False
            except rtmidi.RtMidiError:
                continue
            if not present and kind not in self._missing:
                self._missing.add(kind)
                with self._lock:
                    port.close_port()
                changes.append(("lost", f"MIDI {kind} port {wanted!r} gone; waiting for it to come back"))
            elif present and kind in self._missing:
                try:
                    with self._lock:
                        name = self._open_one(port, wanted, kind, suffix)
                        if kind == "input":  # python-rtmidi drops the callback with the port
                            port.set_callback(self._on_input)
                except (UserError, rtmidi.RtMidiError) as error:
                    log.debug("MIDI: reopening %s failed: %s", wanted, error)
                    continue
                self._missing.discard(kind)
                if kind == "input":
                    self.input_port_name = name
                else:
                    self.output_port_name = name
                changes.append(("back", f"MIDI {kind} port {name!r} back and open"))
        return changes

    def stats(self) -> dict[str, int]:
        counts = dict(self._counts)
        counts["pending_out"] = self._timer.pending() if self._timer else 0
        return counts

    # -- input (rtmidi's thread) ------------------------------------------------------------------
    def _on_input(self, event: tuple[list[int], float], _data: object = None) -> None:
        now = time.perf_counter()
        try:
            data = tuple(event[0])
            if midi_problem(data) is not None:
                self._counts["invalid_in"] += 1
                return
            self._counts["received"] += 1
            self._on_message(data, now)
        except Exception:
            self._counts["callback_errors"] += 1

    def _on_error(self, error_type: int, message: str, _data: object = None) -> None:
        log.warning("MIDI (%s): %s", self.backend, message)
