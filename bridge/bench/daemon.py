"""Drive a `musebridge serve` subprocess: start it, talk OSC to it, stop it. Used by bench and e2e tests.

    daemon = DaemonProcess(["--midi-backend", "jack", "--preset", "transpose"], env=env)
    daemon.start()                               # waits for the "ready" line (or raises with its log)
    client = OscClient(daemon.osc_port)
    client.request("/musebridge/ping", reply="/musebridge/pong")
    daemon.stop()                                # SIGTERM; returns the exit code
"""

from __future__ import annotations

import os
import signal as signals
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

READY_MARK = "ready (Ctrl-C to stop)"


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DaemonProcess:
    """`python -m musebridge serve ARGS --osc-port P` as a subprocess, its output collected in `lines`."""

    def __init__(
        self, args: Sequence[str], *, env: dict[str, str] | None = None, osc_port: int | None = None
    ) -> None:
        self.osc_port = osc_port or free_udp_port()
        self.command = [sys.executable, "-m", "musebridge", "serve", *args, "--osc-port", str(self.osc_port)]
        self.env = dict(env or os.environ)
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self, timeout: float = 20.0) -> DaemonProcess:
        """Start and wait for the ready line; RuntimeError with the output if it exits or stalls."""
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, env=self.env, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"daemon did not become ready: {' '.join(self.command)}\n{self.output()}")
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if READY_MARK in line:
                self._ready.set()

    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signum)

    def stop(self, signum: int = signals.SIGTERM, timeout: float = 10.0) -> int:
        """Send `signum`, wait for the exit; the exit code (killed after `timeout`: -9)."""
        if self.process is None:
            return 0
        self.signal(signum)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = -9
        if self._reader is not None:
            self._reader.join(2.0)
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class OscClient:
    """A UDP OSC client on its own port: sends to the daemon and collects what comes back."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        from pythonosc.osc_message import OscMessage  # noqa: F401  (fail early if python-osc is missing)

        self.target = (host, port)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.05)
        self.received: list[tuple[str, tuple[Any, ...]]] = []

    @property
    def port(self) -> int:
        return self.socket.getsockname()[1]

    def send(self, address: str, *args: Any) -> None:
        from pythonosc.osc_message_builder import OscMessageBuilder

        builder = OscMessageBuilder(address)
        for value in args:
            builder.add_arg(value)
        self.socket.sendto(builder.build().dgram, self.target)

    def send_raw(self, datagram: bytes) -> None:
        self.socket.sendto(datagram, self.target)

    def poll(self, duration: float = 0.0) -> list[tuple[str, tuple[Any, ...]]]:
        """Read everything that arrives within `duration` seconds (at least one non-blocking pass)."""
        from pythonosc.osc_message import OscMessage

        deadline = time.monotonic() + duration
        while True:
            try:
                datagram, _ = self.socket.recvfrom(65535)
            except (TimeoutError, BlockingIOError):
                if time.monotonic() >= deadline:
                    return self.received
                continue
            try:
                message = OscMessage(datagram)
                self.received.append((message.address, tuple(message.params)))
            except Exception:
                self.received.append(("<unparsable>", (datagram,)))

    def wait_for(self, address: str, timeout: float = 3.0, count: int = 1) -> list[tuple[Any, ...]]:
        """Args of the first `count` messages on `address` received so far (waits up to `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [args for addr, args in self.received if addr == address]
            if len(found) >= count or time.monotonic() >= deadline:
                return found[:count] if len(found) >= count else found
            self.poll(0.02)

    def request(self, address: str, *args: Any, reply: str, timeout: float = 3.0) -> tuple[Any, ...]:
        """Send and wait for the next `reply` message; TimeoutError if none comes."""
        before = sum(1 for addr, _ in self.received if addr == reply)
        self.send(address, *args)
        found = self.wait_for(reply, timeout, count=before + 1)
        if len(found) <= before:
            raise TimeoutError(f"no {reply} within {timeout} s after {address}")
        return found[before]

    def close(self) -> None:
        self.socket.close()
