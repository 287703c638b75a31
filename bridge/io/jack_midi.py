"""JACK MIDI backend: ONE JACK client (`musebridge`) with ports `musebridge:in` and `musebridge:out`.

python-rtmidi would make one JACK client per MidiIn/MidiOut object, so this uses JACK-Client.

Timing (see musebridge.io.jack_clock): an incoming event is stamped with the perf_counter time of its
frame. `send_at(data, when)` hands the event over to the process thread, which writes it at the
exact frame offset of `when` inside the cycle that contains it; to be exact it must be handed over
at least one period ahead (`output_lead` is a safe margin). An event handed over late goes out at
the first frame of the next cycle and is counted in stats()["late_out"].

The process callback is Python, so it needs the GIL each period: open() lowers the interpreter's
switch interval (SWITCH_INTERVAL_S) so that a busy Python thread cannot starve it; heavy Python work
(model generation loops) still belongs in another process.

Same-cycle thru (`set_thru(route, on_message)`): the process callback offers each valid incoming
event to `route(data)`; the bytes it returns are written to the output in the same cycle at the
event's own frame offset, merged in frame order with the scheduled output (first thing next cycle
when the cycle is full, counted in stats()["thru_late"]), and tracked as held notes so that
panic()/close() release them. Every event still reaches the callback, with what was forwarded.

The process callback does little: read the cycle times, stamp the incoming events (and route them),
move handed-over events into a heap, write the due ones and the forwarded ones in frame order. It
takes no lock and never raises (an exception there would make JACK drop the client): errors are
counted in stats()["callback_errors"].

close() sends the panic, waits until it is written and SETTLE_CYCLES more cycles have run (bounded),
and only then deactivates: receivers read a cycle's output after our callback returns, so
deactivating at once could lose the last releases.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jack

from musebridge.errors import UserError
from musebridge.io.jack_clock import JackClock
from musebridge.io.midi_ports import (
    DEFAULT_CLIENT_NAME,
    BackendListing,
    HeldNotes,
    MidiCallback,
    all_notes_off_messages,
    checked_midi,
    match_port,
    midi_problem,
)

log = logging.getLogger("musebridge.midi.jack")

#: The process callback is Python: it needs the GIL within a fraction of a period. With CPython's
#: default 5 ms switch interval a busy Python thread starves it (measured: a third of the events lost
#: at 256 frames/48 kHz); 0.5 ms keeps losses rare. open() lowers it for the process, close() restores.
SWITCH_INTERVAL_S = 0.0005

#: At most this many events a cycle: our buffer takes thousands, but a receiving JACK client loses
#: what does not fit in its own input buffer (measured: about 1000 3-byte events a cycle), so a flood
#: is spread over cycles instead (counted in stats()["retried_out"]).
MAX_EVENTS_PER_CYCLE = 512

#: close() lets this many cycles run after the panic was written before it deactivates the client.
SETTLE_CYCLES = 2

#: route(data) -> the bytes to forward in the same cycle, or None (not forwarded). JACK thread.
ThruRoute = Callable[[tuple[int, ...]], "bytes | Sequence[int] | None"]
#: on_message(data, time, forwarded): every valid input event, with the bytes forwarded (or None).
ThruCallback = Callable[[tuple[int, ...], float, "bytes | None"], None]

_NOW = float("-inf")  # handover time meaning "the first frame of the next cycle"
_PANIC = None  # handover data meaning "drop pending output, release held notes"


class _Quiet:
    """Silence libjack's stderr chatter (e.g. 'Cannot connect to server socket') while probing."""

    def __enter__(self) -> None:
        jack.set_error_function(lambda message: None)
        jack.set_info_function(lambda message: None)

    def __exit__(self, *exc: object) -> None:
        jack.set_error_function(None)
        jack.set_info_function(None)


def jack_server_running(servername: str | None = None) -> bool:
    """Whether a JACK server answers; never starts one."""
    with _Quiet():
        try:
            client = jack.Client("musebridge-probe", no_start_server=True, servername=servername)
        except jack.JackError:
            return False
    client.close()
    return True


def list_jack_ports(servername: str | None = None) -> BackendListing:
    """MIDI sources (inputs for us) and destinations (outputs for us) of the running JACK server."""
    with _Quiet():
        try:
            client = jack.Client("musebridge-ports", no_start_server=True, servername=servername)
        except jack.JackError:
            return BackendListing("jack", False, "no JACK server running (musebridge never starts one)")
    try:
        sources = [p.name for p in client.get_ports(is_midi=True, is_output=True)]
        destinations = [p.name for p in client.get_ports(is_midi=True, is_input=True)]
    finally:
        client.close()
    return BackendListing("jack", True, "", sources, destinations)


def _forget_dead_client(client: jack.Client) -> None:
    """Drop a client whose server died without closing it: jack_client_close() on it blocks forever
    (measured with jackd2 killed), and JACK-Client's __del__ would call it at garbage collection.
    The library's few bytes for it are leaked instead (once per server loss)."""
    client._ptr = jack._ffi.NULL  # noqa: SLF001 - the only way to disarm Client.__del__


@dataclass(frozen=True, slots=True)
class _Thru:
    route: ThruRoute
    on_message: ThruCallback


class JackMidiPorts:
    """The JACK backend of MidiPorts (see the module doc)."""

    backend = "jack"
    supports_timed_output = True

    def __init__(
        self,
        client_name: str = DEFAULT_CLIENT_NAME,
        connect_in: str | None = None,
        connect_out: str | None = None,
        servername: str | None = None,
        switch_interval: float | None = SWITCH_INTERVAL_S,
    ) -> None:
        self.client_name = client_name
        self.switch_interval = switch_interval
        self._saved_switch_interval: float | None = None
        self.connect_in = connect_in
        self.connect_out = connect_out
        self.servername = servername
        self.name = f"{client_name}:in / {client_name}:out (JACK)"
        self.client: jack.Client | None = None
        self.clock: JackClock | None = None
        self.alive = False
        self.output_lead = 0.0
        self._on_message: MidiCallback | None = None
        self._thru: _Thru | None = None  # swapped whole: the process thread reads it without a lock
        self._thru_carry: deque[bytes] = deque()  # forwarded events that did not fit in their cycle
        self._cycles = 0  # process callbacks run
        self._settle_at: int | None = None  # close(): cycle count to wait for
        self._settled = threading.Event()
        self._handover: deque[tuple[float, bytes | None]] = deque()
        self._pending: list[tuple[float, int, bytes]] = []
        self._sequence = itertools.count()
        self._held = HeldNotes()
        self._spill: deque[bytes] = deque()  # panic releases that did not fit in their cycle
        self._written = 0  # events written in the current cycle
        self._panic_done = threading.Event()
        self._closing = False
        self._server_gone = False  # set by JACK's shutdown callback
        # connections touching our ports, kept to restore them (the JACK server back, a port back):
        # (source, destination) port names; disconnects are judged in poll(), off the JACK threads
        self._connections: set[tuple[str, str]] = set()
        self._disconnected: deque[tuple[str, str]] = deque()
        self._lost_reported = False
        self._missing: set[str] = set()  # named ports (--midi-in/--midi-out) found gone
        self._counts = dict.fromkeys(
            ("received", "invalid_in", "sent", "late_out", "retried_out", "dropped_out", "callback_errors",
             "xruns", "thru", "thru_late"), 0,
        )

    # -- lifecycle --------------------------------------------------------------------------------
    def open(self, on_message: MidiCallback) -> None:
        """Open the client, register musebridge:in and musebridge:out, activate, connect named ports."""
        self._on_message = on_message
        self._closing = False
        self._open_client()
        try:
            self._connect_named_ports(self.client)
        except BaseException:
            self.close()  # a failed open leaves no client behind
            raise

    def _open_client(self) -> None:
        """Open the JACK client with its two ports and activate it (UserError when no server)."""
        with _Quiet():
            try:
                client = jack.Client(self.client_name, no_start_server=True, servername=self.servername)
            except jack.JackError:
                raise UserError(
                    "no JACK server running (musebridge never starts one): start jackd or choose "
                    "another --midi-backend"
                ) from None
        if client.name != self.client_name:
            client.close()
            raise UserError(
                f"a JACK client named {self.client_name!r} already exists (another musebridge?); "
                "close it or pass --midi-name"
            )
        self.client = client
        self.inport = client.midi_inports.register("in")
        self.outport = client.midi_outports.register("out")
        self.clock = JackClock(client)
        period = client.blocksize / client.samplerate
        self.output_lead = 2.0 * period + 0.002
        client.set_process_callback(self._process)
        client.set_shutdown_callback(self._on_shutdown)
        client.set_xrun_callback(self._on_xrun)
        client.set_port_connect_callback(self._on_connect)
        if self.switch_interval is not None and sys.getswitchinterval() > self.switch_interval:
            self._saved_switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(self.switch_interval)
        client.activate()
        self.alive = True
        log.info(
            "JACK MIDI ports %s and %s (%d Hz, %d frames/period)",
            self.inport.name, self.outport.name, client.samplerate, client.blocksize,
        )

    def _connect_named_ports(self, client: jack.Client, only: str | None = None) -> None:
        if self.connect_in and only in (None, "input"):
            sources = [p.name for p in client.get_ports(is_midi=True, is_output=True)]
            sources = [s for s in sources if s != self.outport.name]
            client.connect(sources[match_port(self.connect_in, sources, "input")], self.inport)
        if self.connect_out and only in (None, "output"):
            targets = [p.name for p in client.get_ports(is_midi=True, is_input=True)]
            targets = [t for t in targets if t != self.inport.name]
            client.connect(self.outport, targets[match_port(self.connect_out, targets, "output")])

    def close(self) -> None:
        """Release held notes and send all-notes-off, let them reach the receivers, then close.

        Waits (bounded) until the panic is written and SETTLE_CYCLES more cycles have run."""
        self._closing = True
        client = self.client
        if client is None:
            return
        if self.alive:
            period = client.blocksize / client.samplerate
            self.panic()
            if self._panic_done.wait(timeout=max(0.2, 4 * period)):
                self._wait_cycles(SETTLE_CYCLES, timeout=max(0.05, (SETTLE_CYCLES + 2) * period))
            try:
                client.deactivate()
            except jack.JackError as error:
                log.warning("JACK: deactivate failed: %s", error)
        elif self._lost_reported or self._server_gone:
            _forget_dead_client(client)
            client = None
        self.alive = False
        if client is not None:
            try:
                client.close()
            except jack.JackError as error:
                log.warning("JACK: close failed: %s", error)
        self.client = None
        if self._saved_switch_interval is not None:
            sys.setswitchinterval(self._saved_switch_interval)
            self._saved_switch_interval = None

    def _wait_cycles(self, count: int, timeout: float) -> bool:
        """Block until the process callback has run `count` more times (False on timeout)."""
        self._settled.clear()
        self._settle_at = self._cycles + count
        settled = self._settled.wait(timeout=timeout)
        self._settle_at = None
        return settled

    # -- same-cycle thru ----------------------------------------------------------------------------
    def set_thru(self, route: ThruRoute | None, on_message: ThruCallback | None = None) -> None:
        """Same-cycle thru; `route=None` turns it off (open()'s callback gets the input again).

        From the next cycle on, each valid incoming event is offered to `route(data)` on the JACK
        process thread (it must be quick and must not block); the bytes it returns are written to
        the output in that cycle at the event's own frame offset, or first thing in the next cycle
        when the cycle is full, and their notes are tracked for panic()/close(). Whatever `route`
        returns is sent (unless a panic drops it first): its bookkeeping can count on it. A route
        that raises or returns malformed bytes forwards nothing (counted in callback_errors). Then
        `on_message(data, time, forwarded)` gets every event, in place of open()'s callback."""
        if route is None:
            self._thru = None
            return
        if on_message is None:
            raise ValueError("set_thru(route, on_message): the input must still reach on_message")
        self._thru = _Thru(route, on_message)

    # -- sending (any thread) ---------------------------------------------------------------------
    def send_now(self, data: Sequence[int]) -> None:
        """Write at the first frame of the next cycle. ValueError if `data` is not one MIDI message."""
        message = checked_midi(data)
        if self.alive:
            self._handover.append((_NOW, message))
        else:
            self._counts["dropped_out"] += 1

    def send_at(self, data: Sequence[int], time: float) -> None:
        """Write on the frame that sounds at perf_counter `time` (hand over >= output_lead ahead)."""
        message = checked_midi(data)
        if self.alive:
            self._handover.append((float(time), message))
        else:
            self._counts["dropped_out"] += 1

    def panic(self) -> None:
        """Drop every event not yet written; note-off for each held note; sustain off + all notes off."""
        self._panic_done.clear()
        if self.alive:
            self._handover.append((_NOW, _PANIC))
        else:
            self._panic_done.set()

    def stats(self) -> dict[str, int]:
        counts = dict(self._counts)
        counts["pending_out"] = len(self._pending) + len(self._handover) + len(self._thru_carry)
        return counts

    def time_now_frame(self) -> int:
        """The frame sounding now (for diagnostics and tests)."""
        assert self.clock is not None
        return self.clock.time_to_frame(time.perf_counter())

    # -- JACK threads -----------------------------------------------------------------------------
    def _process(self, nframes: int) -> None:
        try:
            self._cycle(nframes)
        except Exception:  # returning an error would make JACK drop the client
            self._counts["callback_errors"] += 1

    def _cycle(self, nframes: int) -> None:
        clock = self.clock
        cycle = clock.update(nframes)
        self._cycles += 1
        settle_at = self._settle_at
        if settle_at is not None and self._cycles >= settle_at:
            self._settled.set()
        start = cycle.frames
        end = start + nframes
        forwards = self._read_input(start)  # (offset, bytes) to forward this cycle, in frame order
        pending = self._pending
        handover = self._handover
        out = self.outport
        out.clear_buffer()
        self._written = 0
        if self._spill:
            self._write_spill(out)
        while handover:
            when, message = handover.popleft()
            if message is _PANIC:
                self._counts["dropped_out"] += len(forwards)
                forwards.clear()  # not yet written: a panic drops them with the rest
                self._write_panic(out)
                continue
            heapq.heappush(pending, (when, next(self._sequence), message))
        counts = self._counts
        # events stay keyed by time until their cycle comes: each is converted with that cycle's rate
        end_time = clock.frame_to_time(end)
        # while releases are still queued (a full buffer), newer output waits: it must follow them
        while pending and not self._spill and pending[0][0] < end_time:
            when, order, message = pending[0]
            frame = start if when == _NOW else clock.time_to_frame(when)
            if frame >= end:  # rounds to the next cycle's first frame
                break
            offset = frame - start if frame > start else 0
            if forwards and not self._write_forwards(out, forwards, offset):
                break
            if self._written >= MAX_EVENTS_PER_CYCLE:
                counts["retried_out"] += 1
                break
            try:
                out.write_midi_event(offset, message)
            except jack.JackError:  # buffer full: the rest waits for the next cycle
                counts["retried_out"] += 1
                break
            self._written += 1
            heapq.heappop(pending)
            if frame < start and when != _NOW:
                counts["late_out"] += 1
            self._held.track(message)
            counts["sent"] += 1
        if forwards and not self._spill:
            self._write_forwards(out, forwards, nframes)
        if forwards:  # did not fit: first thing next cycle, in order
            counts["thru_late"] += len(forwards)
            self._thru_carry.extend(message for _, message in forwards)

    def _read_input(self, start: int) -> deque[tuple[int, bytes]]:
        """Stamp each valid incoming event and hand it on; with thru set, route it first.

        Returns what to forward this cycle: last cycle's carry at offset 0, then this cycle's."""
        counts = self._counts
        clock = self.clock
        thru = self._thru
        forwards: deque[tuple[int, bytes]] = deque((0, message) for message in self._thru_carry)
        self._thru_carry.clear()
        for offset, buffer in self.inport.incoming_midi_events():
            data = tuple(bytes(buffer))
            if midi_problem(data) is not None:
                counts["invalid_in"] += 1
                continue
            counts["received"] += 1
            when = clock.frame_to_time(start + offset)
            try:
                if thru is None:
                    self._on_message(data, when)
                    continue
                forward = self._routed(thru, data)
                if forward is not None:
                    forwards.append((offset, forward))
                thru.on_message(data, when, forward)
            except Exception:
                counts["callback_errors"] += 1
        return forwards

    def _routed(self, thru: _Thru, data: tuple[int, ...]) -> bytes | None:
        """The bytes `thru.route` forwards of `data`, checked; None when it forwards nothing or fails."""
        try:
            forward = thru.route(data)
            if forward is None:
                return None
            return checked_midi(forward)
        except Exception:  # a failing route or malformed bytes: the input takes the normal path
            self._counts["callback_errors"] += 1
            return None

    def _write_forwards(self, out: jack.OwnMidiPort, forwards: deque[tuple[int, bytes]], until: int) -> bool:
        """Write the forwarded events at offsets <= `until` (all when `until` is nframes); False
        when the cycle is full (the rest then waits, and so does everything after it)."""
        counts = self._counts
        while forwards and forwards[0][0] <= until:
            offset, message = forwards[0]
            if self._written >= MAX_EVENTS_PER_CYCLE:
                return False
            try:
                out.write_midi_event(offset, message)
            except jack.JackError:
                return False
            self._written += 1
            forwards.popleft()
            self._held.track(message)
            counts["sent"] += 1
            counts["thru"] += 1
        return True

    def _write_panic(self, out: jack.OwnMidiPort) -> None:
        """Process thread: drop pending output, then release held notes and all-notes-off at offset 0.

        What does not fit in this cycle's buffer is written first thing in the next ones.
        """
        self._counts["dropped_out"] += len(self._pending) + len(self._thru_carry)
        self._pending.clear()
        self._thru_carry.clear()
        self._spill.extend(self._held.release_messages() + all_notes_off_messages())
        self._write_spill(out)

    def _write_spill(self, out: jack.OwnMidiPort) -> bool:
        """Write the queued releases at offset 0; True when all went out (then the panic is done)."""
        spill = self._spill
        while spill:
            if self._written >= MAX_EVENTS_PER_CYCLE:
                return False
            try:
                out.write_midi_event(0, spill[0])
            except jack.JackError:
                return False
            self._written += 1
            spill.popleft()
            self._counts["sent"] += 1
        self._panic_done.set()
        return True

    def _on_xrun(self, delay_usecs: float) -> None:
        self._counts["xruns"] += 1

    def _on_shutdown(self, status: jack.Status, reason: str) -> None:
        self._server_gone = True
        self.alive = False
        self._panic_done.set()
        self._settled.set()
        log.error("JACK server shut down (%s): MIDI ports gone; musebridge goes on and reconnects "
                  "when the server is back", reason)

    def _on_connect(self, a: jack.Port, b: jack.Port, connect: bool) -> None:
        if self.client is None:
            return
        ours = {self.inport.name, self.outport.name}
        if a.name in ours or b.name in ours:
            log.info("JACK: %s %s %s", a.name, "->" if connect else "-/->", b.name)
            pair = (a.name, b.name) if a.is_output else (b.name, a.name)
            if connect:
                self._connections.add(pair)
            else:
                self._disconnected.append(pair)  # a user's choice, or a port going away: poll() tells

    # -- watching (a thread of the daemon, every second or so; never the JACK threads) -----------
    def poll(self) -> list[tuple[str, str]]:
        """Notice losses and recover; returns (state, detail) changes to report, state "lost" or "back".

        - The JACK server gone (killed, crashed): ("lost", why) once; then each poll tries to open
          the client again; when the server is back: ("back", ...) with the ports registered again
          and every connection they had restored (the user's and --midi-in/--midi-out).
        - A named port (--midi-in/--midi-out) that disappears: ("lost", "port NAME gone"); when a
          port of that name is there again it is connected again: ("back", ...). Other connections
          whose far port went away come back with it too.
        A connection removed while both ports still exist was the user's choice: it is forgotten."""
        if self._closing or self.client is None:
            return []
        if not self.alive:
            return self._poll_server()
        changes: list[tuple[str, str]] = []
        try:
            names = {port.name for port in self.client.get_ports(is_midi=True)}
        except jack.JackError:
            return changes
        while self._disconnected:
            pair = self._disconnected.popleft()
            if pair[0] in names and pair[1] in names:
                self._connections.discard(pair)  # both still there: the user disconnected them
        for kind, wanted in (("input", self.connect_in), ("output", self.connect_out)):
            if not wanted:
                continue
            present = any(wanted == name or wanted.lower() in name.lower()
                          for name in names if not name.startswith(f"{self.client_name}:"))
            if not present and wanted not in self._missing:
                self._missing.add(wanted)
                changes.append(("lost", f"MIDI {kind} port {wanted!r} gone; waiting for it to come back"))
            elif present and wanted in self._missing:
                self._missing.discard(wanted)
                try:
                    self._connect_named_ports(self.client, only=kind)
                    changes.append(("back", f"MIDI {kind} port {wanted!r} back and connected"))
                except (UserError, jack.JackError) as error:
                    self._missing.add(wanted)
                    log.debug("JACK: reconnecting %s failed: %s", wanted, error)
        self._restore_connections(names)
        return changes

    def _poll_server(self) -> list[tuple[str, str]]:
        changes: list[tuple[str, str]] = []
        if not self._lost_reported:
            self._lost_reported = True
            changes.append(("lost", "JACK server gone: MIDI ports lost; reconnecting when it is back"))
        old = self.client
        try:
            self._open_client()
        except UserError:
            return changes
        # what was pending or held belonged to the dead server's graph: nothing of it is played now
        self._handover.clear()
        self._pending.clear()
        self._spill.clear()
        self._thru_carry.clear()
        self._held = HeldNotes()
        if old is not None and old is not self.client:
            _forget_dead_client(old)
        self._lost_reported = self._server_gone = False
        self._missing.clear()
        try:
            self._connect_named_ports(self.client)
        except (UserError, jack.JackError) as error:
            log.warning("JACK: reconnecting the named ports failed: %s", error)
        restored = self._restore_connections({port.name for port in self.client.get_ports(is_midi=True)})
        changes.append(("back", f"JACK server back: ports {self.inport.name} and {self.outport.name} "
                        f"registered again, {restored} connection{'s' if restored != 1 else ''} restored"))
        return changes

    def _restore_connections(self, names: set[str]) -> int:
        """Connect again every remembered connection whose two ports exist; how many were made."""
        made = 0
        client = self.client
        assert client is not None
        for source, destination in sorted(self._connections):
            if source not in names or destination not in names:
                continue
            try:
                if destination in {p.name for p in client.get_all_connections(source)}:
                    continue
                client.connect(source, destination)
                made += 1
            except jack.JackError as error:
                log.debug("JACK: restoring %s -> %s failed: %s", source, destination, error)
        return made
