"""End-to-end helpers: a private `jackd -d dummy` server and a frame-accurate JACK MIDI test client.

Used by tests/conftest.py (fixtures `jack_server`, `midi_client`) and by the daemon tests.

    server = JackServer.start()            # jackd -n <unique> -d dummy -r 48000 -p 256, realtime
    client = MidiTestClient("probe")       # ports probe:in, probe:out on JACK_DEFAULT_SERVER
    client.connect(client.port_name("out"), client.find_port("musebridge:in", is_input=True))
    client.send_at([0x90, 60, 100], when)  # lands on the frame that sounds at perf_counter `when`
    events = client.wait_for(1, timeout=2) # [ReceivedEvent(frame, time, data)]
    server.stop()

Times are time.perf_counter() seconds, the daemon's clock (see musebridge.io.jack_clock).
Waiting is always "until this many events arrived, or a deadline": never sleep-and-hope.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import heapq
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_RATE = 48000
PERIOD_FRAMES = 256
_server_counter = itertools.count()
_NOW = -1  # handover frame meaning "the next cycle's first frame"


def _die_with_parent() -> None:
    """In the forked child: have Linux SIGTERM jackd when the test process dies (no orphan servers)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass  # not Linux: teardown still stops the server


def jackd_missing_reason() -> str | None:
    """Why the JACK end-to-end tests cannot run here, or None when they can."""
    for tool in ("jackd", "jack_lsp"):
        if shutil.which(tool) is None:
            return f"{tool} not found (install the Debian package jackd2)"
    try:
        import jack  # noqa: F401
    except Exception as error:  # pragma: no cover - depends on the machine
        return f"JACK-Client not importable: {error}"
    return None


@dataclass
class JackServer:
    """A running `jackd -d dummy` with its own server name; `env` is for subprocesses."""

    name: str
    process: subprocess.Popen
    log_path: Path
    samplerate: int = SAMPLE_RATE
    period: int = PERIOD_FRAMES
    env: dict[str, str] = field(default_factory=dict)
    killed: bool = False

    @classmethod
    def start(
        cls, samplerate: int = SAMPLE_RATE, period: int = PERIOD_FRAMES, timeout: float = 15.0,
        name: str | None = None,
    ) -> JackServer:
        """Start jackd with realtime scheduling and wait until jack_lsp answers (a fresh server name
        unless `name` is given: a server killed and started again under its own name)."""
        reason = jackd_missing_reason()
        if reason:
            raise RuntimeError(reason)
        name = name or f"mbtest-{os.getpid()}-{next(_server_counter)}"
        log_fd, log_name = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
        env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        command = ["jackd", "-n", name, "-d", "dummy", "-r", str(samplerate), "-p", str(period)]
        process = subprocess.Popen(
            command, stdout=log_fd, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        os.close(log_fd)
        server = cls(name, process, Path(log_name), samplerate, period, env)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log = server.log()
                server.stop()
                hint = ""
                if "Too many servers" in log:
                    running = subprocess.run(["pgrep", "-a", "jackd"], capture_output=True, text=True).stdout
                    hint = f"\njackd allows only a few servers at once; running now:\n{running}"
                raise RuntimeError(f"jackd exited with {process.returncode}:\n{log}{hint}")
            probe = subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True, timeout=10)
            if probe.returncode == 0 and "system:" in probe.stdout:
                return server
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"jackd {name} did not answer within {timeout} s:\n{server.log()}")
            time.sleep(0.05)

    @property
    def realtime(self) -> bool:
        """Whether jackd says it runs in realtime mode (without it the dummy driver drops events)."""
        return "realtime mode" in self.log() and "Cannot use real-time" not in self.log()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def ports(self) -> list[str]:
        """Every port name on this server (jack_lsp)."""
        probe = subprocess.run(["jack_lsp"], env=self.env, capture_output=True, text=True, timeout=10)
        return [line.strip() for line in probe.stdout.splitlines() if line.strip()]

    def kill(self) -> None:
        """SIGKILL: the server dies without telling its clients anything (a crash). Its entry in
        JACK's server registry (8 slots per machine) stays behind until a server of the same name
        starts again: restart() or stop() does that, so no test leaks a slot."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
            self.killed = True

    def restart(self) -> JackServer:
        """A new jackd under the same name (after kill); the returned server replaces this one."""
        self.kill()
        self.killed = False  # the new server takes over the registry entry
        return JackServer.start(self.samplerate, self.period, name=self.name)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; idempotent. A server that ended by a signal (killed by a
        test and not restarted, crashed, or SIGKILLed here) is started once more under its name and
        stopped cleanly, which frees its entry in JACK's server registry."""
        died = self.killed or (self.process.poll() is not None and self.process.returncode < 0)
        self.killed = False
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
                died = True
        if died:  # ended by a signal: its registry entry stays until a server of its name runs again
            try:
                JackServer.start(self.samplerate, self.period, name=self.name).stop()
            except RuntimeError:
                pass  # best effort: a teardown must not fail for it
        try:
            self.log_path.unlink()
        except OSError:
            pass


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """A MIDI event as the test client wrote or received it: absolute frame, its perf_counter time, bytes."""

    frame: int
    time: float
    data: tuple[int, ...]


class MidiTestClient:
    """A JACK-Client test client with one MIDI input and one MIDI output port, frame-accurate both ways.

    Outgoing events are handed over ahead of time (frame or perf time) and written at their exact frame
    offset in the cycle that contains them; events handed over too late go out at frame 0 of the next
    cycle and are counted in `late_events`. Incoming events are recorded with their absolute frame.
    """

    def __init__(self, name: str = "mbtest", servername: str | None = None) -> None:
        import jack

        from musebridge.io.jack_clock import JackClock

        self.client = jack.Client(name, no_start_server=True, servername=servername)
        self.name = self.client.name
        self.inport = self.client.midi_inports.register("in")
        self.outport = self.client.midi_outports.register("out")
        self.clock = JackClock(self.client)
        self._handover: deque[tuple[int | None, float, tuple[int, ...]]] = deque()
        self._pending: list[tuple[int, int, tuple[int, ...]]] = []
        self._timed: list[tuple[float, int, tuple[int, ...]]] = []
        self._sequence = itertools.count()
        self.received: deque[ReceivedEvent] = deque()
        self.sent: deque[ReceivedEvent] = deque()  # as written: frame, its time, bytes
        self.late_events = 0
        self.write_errors = 0
        self.xruns = 0
        self.cycles = 0
        self.closed = False
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._on_xrun)
        self.client.activate()
        self.wait_cycles(2)

    # -- process thread -------------------------------------------------------------------------
    def _on_xrun(self, delay: float) -> None:
        self.xruns += 1

    def _process(self, nframes: int) -> None:
        clock = self.clock
        cycle = clock.update(nframes)
        start = cycle.frames
        end = start + nframes
        handover = self._handover
        while handover:
            frame, when, data = handover.popleft()
            if frame is None:
                heapq.heappush(self._timed, (when, next(self._sequence), data))
                continue
            if frame == _NOW:
                frame = start
            heapq.heappush(self._pending, (frame, next(self._sequence), data))
        end_time = clock.frame_to_time(end)
        while self._timed and self._timed[0][0] < end_time:  # converted in their own cycle
            when, order, data = heapq.heappop(self._timed)
            heapq.heappush(self._pending, (clock.time_to_frame(when), order, data))
        out = self.outport
        out.clear_buffer()
        pending = self._pending
        while pending and pending[0][0] < end:
            frame, _, data = heapq.heappop(pending)
            offset = frame - start
            if offset < 0:
                offset = 0
                self.late_events += 1
            try:
                out.write_midi_event(offset, data)
                self.sent.append(ReceivedEvent(start + offset, clock.frame_to_time(start + offset), data))
            except Exception:
                self.write_errors += 1
        for offset, buffer in self.inport.incoming_midi_events():
            frame = start + offset
            self.received.append(ReceivedEvent(frame, self.clock.frame_to_time(frame), tuple(bytes(buffer))))
        self.cycles += 1

    # -- sending --------------------------------------------------------------------------------
    def send_at_frame(self, data: Sequence[int], frame: int) -> None:
        """Write `data` on absolute frame `frame` (hand it over at least one period ahead)."""
        self._handover.append((int(frame), 0.0, tuple(data)))

    def send_at(self, data: Sequence[int], when: float) -> None:
        """Write `data` on the frame that sounds at perf_counter time `when`."""
        self._handover.append((None, float(when), tuple(data)))

    def send_now(self, data: Sequence[int]) -> None:
        """Write `data` at frame 0 of the next cycle."""
        self._handover.append((_NOW, 0.0, tuple(data)))

    # -- clock ----------------------------------------------------------------------------------
    def frame_now(self) -> int:
        """The frame that sounds now (perf_counter), by this client's clock."""
        return self.clock.time_to_frame(time.perf_counter())

    def frame_to_time(self, frame: int) -> float:
        return self.clock.frame_to_time(frame)

    def time_to_frame(self, when: float) -> int:
        return self.clock.time_to_frame(when)

    @property
    def samplerate(self) -> int:
        return self.client.samplerate

    @property
    def blocksize(self) -> int:
        return self.client.blocksize

    # -- waiting --------------------------------------------------------------------------------
    def wait_cycles(self, count: int, timeout: float = 5.0) -> None:
        """Block until `count` more process cycles have run."""
        target = self.cycles + count
        deadline = time.monotonic() + timeout
        while self.cycles < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: JACK ran no process cycle for {timeout} s")
            time.sleep(0.001)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedEvent]:
        """All events received so far once there are at least `count` (or the deadline passed)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.002)
        return list(self.received)

    def wait_until_sent(self, timeout: float = 5.0) -> None:
        """Block until every handed-over event has been written."""
        deadline = time.monotonic() + timeout
        while (self._handover or self._pending or self._timed) and time.monotonic() < deadline:
            time.sleep(0.002)
        self.wait_cycles(1)

    def clear(self) -> None:
        self.received.clear()
        self.sent.clear()

    # -- ports ----------------------------------------------------------------------------------
    def port_name(self, short: str) -> str:
        """Full name of one of this client's ports ('in' or 'out')."""
        return f"{self.name}:{short}"

    def midi_ports(self, is_input: bool | None = None) -> list[str]:
        """Names of MIDI ports on the server (inputs = ports that receive)."""
        if is_input is None:
            ports = self.client.get_ports(is_midi=True)
        else:
            ports = self.client.get_ports(is_midi=True, is_input=is_input, is_output=not is_input)
        return [port.name for port in ports]

    def find_port(self, name: str, is_input: bool, timeout: float = 5.0) -> str:
        """A MIDI port by exact name, else by unique substring; waits for it to appear."""
        deadline = time.monotonic() + timeout
        while True:
            names = self.midi_ports(is_input)
            if name in names:
                return name
            matches = [candidate for candidate in names if name in candidate]
            if len(matches) == 1:
                return matches[0]
            if time.monotonic() > deadline:
                kind = "input" if is_input else "output"
                raise LookupError(f"no unique MIDI {kind} port matching {name!r}; ports: {names}")
            time.sleep(0.01)

    def connect(self, source: str, destination: str) -> None:
        self.client.connect(source, destination)

    def connect_to(self, destination: str) -> None:
        """Connect this client's out to `destination` (a port name, found by listing)."""
        self.connect(self.port_name("out"), self.find_port(destination, is_input=True))

    def connect_from(self, source: str) -> None:
        """Connect `source` (found by listing) to this client's in."""
        self.connect(self.find_port(source, is_input=False), self.port_name("in"))

    def abandon(self) -> None:
        """Forget a client whose server was killed: closing it would block forever in libjack."""
        self.closed = True
        self.client._ptr = __import__("jack")._ffi.NULL  # disarms Client.__del__ (it would close)

    def close(self) -> None:
        """Deactivate and close (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.client.deactivate()
        finally:
            self.client.close()


def wire(midi_client: Callable[[str], MidiTestClient]) -> MidiTestClient:
    """A client "probe" looped around the daemon: probe -> musebridge:in, musebridge:out -> probe."""
    probe = midi_client("probe")
    probe.connect_to("musebridge:in")
    probe.connect_from("musebridge:out")
    return probe


def note_pairs(events: Iterable[ReceivedEvent], status: int = 0x90) -> list[ReceivedEvent]:
    """The events whose status byte (channel ignored) is `status` with a non-zero velocity."""
    return [e for e in events if e.data and (e.data[0] & 0xF0) == status and len(e.data) > 2 and e.data[2]]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank (no numpy needed)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[rank]

