"""JACK pieces of `musebridge bench`: a private jackd, and a frame-accurate probe client.

    with private_jackd() as server:                 # jackd -n <unique> -d dummy -r 48000 -p 256
        probe = JackProbe("mbbench", ("bridge", "direct"), servername=server.name)
        probe.send_at_frame("bridge", (0x90, 60, 100), frame)
        probe.received["bridge"]                    # deque of (frame, data)

Every probe port pair is `<name>:out_<pair>` -> ... -> `<name>:in_<pair>`. Frames are JACK's
(unwrapped) frame counter, the same numbering for every client of a server.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

SAMPLE_RATE = 48000
PERIOD = 256


@dataclass
class JackdProcess:
    name: str
    process: subprocess.Popen[bytes] | None  # None: a server that was already running
    env: dict[str, str]
    log_path: str | None = None

    def log(self) -> str:
        if not self.log_path:
            return ""
        with open(self.log_path, errors="replace") as handle:
            return handle.read()


def jack_running(env: dict[str, str] | None = None) -> bool:
    """Whether a JACK server answers (jack_lsp) for `env`'s JACK_DEFAULT_SERVER."""
    if shutil.which("jack_lsp") is None:
        return False
    probe = subprocess.run(["jack_lsp"], env=dict(env or os.environ, JACK_NO_START_SERVER="1"),
                           capture_output=True, text=True, timeout=10)
    return probe.returncode == 0


def jack_unavailable_reason() -> str | None:
    """Why no JACK benchmark can run here, or None."""
    for tool in ("jackd", "jack_lsp"):
        if shutil.which(tool) is None:
            return f"{tool} not found (install JACK, e.g. the Debian package jackd2)"
    try:
        import jack  # noqa: F401
    except Exception as error:
        return f"JACK-Client not importable: {error}"
    return None


@contextlib.contextmanager
def private_jackd(timeout: float = 15.0) -> Iterator[JackdProcess]:
    """A `jackd -d dummy` of our own (realtime, 48 kHz, 256 frames), stopped afterwards."""
    name = f"mbbench-{os.getpid()}"
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    log_fd, log_path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
    process = subprocess.Popen(
        ["jackd", "-n", name, "-d", "dummy", "-r", str(SAMPLE_RATE), "-p", str(PERIOD)],
        stdout=log_fd, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    os.close(log_fd)
    server = JackdProcess(name, process, env, log_path)
    try:
        deadline = time.monotonic() + timeout
        while not jack_running(env):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jackd did not start:\n{server.log()}")
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        with contextlib.suppress(OSError):
            os.unlink(log_path)


class JackProbe:
    """A JACK client with MIDI port pairs; sends on exact frames, stamps what it receives with frames."""

    def __init__(self, name: str, pairs: Sequence[str], servername: str | None = None) -> None:
        import jack

        from musebridge.io.jack_clock import JackClock

        self.client = jack.Client(name, no_start_server=True, servername=servername)
        self.name = self.client.name
        self.outs = {pair: self.client.midi_outports.register(f"out_{pair}") for pair in pairs}
        self.ins = {pair: self.client.midi_inports.register(f"in_{pair}") for pair in pairs}
        self.clock = JackClock(self.client)
        self.received: dict[str, deque[tuple[int, tuple[int, ...]]]] = {pair: deque() for pair in pairs}
        self._handover: deque[tuple[str, int, tuple[int, ...]]] = deque()
        self._pending: list[tuple[int, int, str, tuple[int, ...]]] = []
        self._sequence = itertools.count()
        self.late_writes = 0
        self.cycles = 0
        self.xruns = 0
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._on_xrun)
        self.client.activate()
        self.wait_cycles(2)

    def _on_xrun(self, delay: float) -> None:
        self.xruns += 1

    def _process(self, nframes: int) -> None:
        cycle = self.clock.update(nframes)
        start, end = cycle.frames, cycle.frames + nframes
        while self._handover:
            pair, frame, data = self._handover.popleft()
            heapq.heappush(self._pending, (frame, next(self._sequence), pair, data))
        for port in self.outs.values():
            port.clear_buffer()
        while self._pending and self._pending[0][0] < end:
            frame, _, pair, data = heapq.heappop(self._pending)
            offset = frame - start
            if offset < 0:
                offset = 0
                self.late_writes += 1
            try:
                self.outs[pair].write_midi_event(offset, data)
            except Exception:
                self.late_writes += 1
        for pair, port in self.ins.items():
            for offset, buffer in port.incoming_midi_events():
                self.received[pair].append((start + offset, tuple(bytes(buffer))))
        self.cycles += 1

    @property
    def period(self) -> int:
        return self.client.blocksize

    @property
    def samplerate(self) -> int:
        return self.client.samplerate

    def frame_now(self) -> int:
        return self.clock.time_to_frame(time.perf_counter())

    def send_at_frame(self, pair: str, data: Sequence[int], frame: int) -> None:
        """Write `data` on `out_<pair>` at absolute `frame` (hand it over a period or more ahead)."""
        self._handover.append((pair, int(frame), tuple(data)))

    def wait_cycles(self, count: int, timeout: float = 5.0) -> None:
        target = self.cycles + count
        deadline = time.monotonic() + timeout
        while self.cycles < target:
            if time.monotonic() > deadline:
                raise TimeoutError("JACK ran no process cycle")
            time.sleep(0.001)

    def wait_until_frame(self, frame: int, timeout: float = 60.0) -> None:
        """Sleep until JACK's clock has passed `frame`."""
        deadline = time.monotonic() + timeout
        while self.frame_now() < frame and time.monotonic() < deadline:
            time.sleep(0.005)

    def connect(self, source: str, destination: str, timeout: float = 5.0) -> None:
        """Connect two ports, waiting for them to appear."""
        deadline = time.monotonic() + timeout
        while True:
            names = {port.name for port in self.client.get_ports(is_midi=True)}
            if source in names and destination in names:
                self.client.connect(source, destination)
                return
            if time.monotonic() > deadline:
                raise LookupError(f"ports {source} -> {destination} not found; MIDI ports: {sorted(names)}")
            time.sleep(0.02)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.deactivate()
        with contextlib.suppress(Exception):
            self.client.close()
