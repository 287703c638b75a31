"""The server in-process, with a fake MIDI port and real UDP: handler failures are contained."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from musebridge.bench.daemon import OscClient
from musebridge.daemon import edges as server_edges
from musebridge.daemon.server import Server, ServerConfig


class FakePorts:
    """An untimed MIDI port that records what it is sent."""

    backend = "fake"
    supports_timed_output = False
    output_lead = 0.0

    def __init__(self) -> None:
        self.sent: list[tuple[int, ...]] = []
        self.invalid_in = 0
        self.on_message: Callable[[tuple[int, ...], float], None] | None = None
        self.closed = False
        self.panics = 0

    def open(self, on_message: Callable[[tuple[int, ...], float], None]) -> None:
        self.on_message = on_message

    def send_now(self, data: Sequence[int]) -> None:
        self.sent.append(tuple(data))

    def send_at(self, data: Sequence[int], time: float) -> None:
        raise AssertionError("untimed port")

    def close(self) -> None:
        self.closed = True

    def panic(self) -> None:
        self.panics += 1

    def stats(self) -> dict[str, int]:
        return {"invalid_in": self.invalid_in}


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, FakePorts]]:
    ports = FakePorts()

    def open_fake(config: ServerConfig, on_message: Callable[..., None]) -> tuple[FakePorts, list[str]]:
        ports.open(on_message)
        return ports, ["MIDI: fake"]

    monkeypatch.setattr(server_edges, "open_midi", open_fake)
    server = Server(ServerConfig(preset="default", midi_backend="none", osc_port=0, clock="internal"))
    lines = server.start()
    assert "MIDI: fake" in lines and any(line.startswith("OSC: listening on 127.0.0.1:") for line in lines)
    yield server, ports
    server.stop()


def test_thru_note_and_a_failing_midi_handler_still_closes_the_note(running) -> None:
    server, ports = running
    assert ports.on_message is not None
    ports.on_message((0x90, 60, 100), time.perf_counter())
    assert wait_until(lambda: (0x90, 60, 100) in ports.sent)

    real = server.conductor.handle_midi

    def broken(data: Sequence[int], when: float):
        if data[0] & 0xF0 == 0x80:
            raise RuntimeError("conductor bug")
        return real(data, when)

    server.conductor.handle_midi = broken
    ports.on_message((0x80, 60, 0), time.perf_counter())
    assert wait_until(lambda: (0x80, 60, 0) in ports.sent)  # the crash path let the note-off through
    assert server.counters.handler_errors == 1
    ports.on_message((0x90, 62, 90), time.perf_counter())  # the loop goes on
    assert wait_until(lambda: (0x90, 62, 90) in ports.sent)


def test_a_failing_osc_handler_answers_error_and_the_daemon_goes_on(running) -> None:
    server, _ = running
    client = OscClient(server.osc.address[1])
    real = server.conductor.handle_osc

    def broken(address: str, args: tuple, sender: tuple[str, int], when: float):
        if address == "/musebridge/genre":
            raise KeyError("conductor bug")
        return real(address, args, sender, when)

    server.conductor.handle_osc = broken
    client.send("/musebridge/genre", 1, "folk")
    (reason, address), = client.wait_for("/musebridge/error", timeout=3.0)
    assert address == "/musebridge/genre" and reason.startswith("internal error:")
    assert client.request("/musebridge/ping", reply="/musebridge/pong") == ()
    assert server.counters.handler_errors == 1
    client.close()


def test_malformed_midi_dropped_by_the_port_is_reported_to_clients(running) -> None:
    server, ports = running
    client = OscClient(server.osc.address[1])
    client.request("/musebridge/hello", client.port, reply="/musebridge/welcome")
    ports.invalid_in = 3
    (reason, address), = client.wait_for("/musebridge/error", timeout=3.0)
    assert (reason, address) == ("3 malformed MIDI messages dropped", "midi")
    ports.invalid_in = 4
    second = client.wait_for("/musebridge/error", timeout=3.0, count=2)[1]
    assert second == ("1 malformed MIDI message dropped", "midi")
    client.close()


def test_panic_closes_a_key_struck_twice_and_sends_sustain_and_all_notes_off(running) -> None:
    """Issue 13: thru 60, 60, 62 held, then /musebridge/panic left one 60 sounding."""
    server, ports = running
    for pitch in (60, 60, 62):
        ports.on_message((0x90, pitch, 100), time.perf_counter())
    assert wait_until(lambda: ports.sent.count((0x90, 60, 100)) == 2 and (0x90, 62, 100) in ports.sent)
    client = OscClient(server.osc.address[1])
    client.send("/musebridge/panic")
    assert wait_until(lambda: (0xB0, 123, 0) in ports.sent)
    assert ports.sent.count((0x80, 60, 0)) == 2 and ports.sent.count((0x80, 62, 0)) == 1
    assert (0xB0, 64, 0) in ports.sent
    assert ports.panics == 1  # what the port forwarded itself is released too
    client.close()


def test_stop_closes_every_note_and_the_ports(running) -> None:
    server, ports = running
    ports.on_message((0x91, 64, 100), time.perf_counter())  # a thru note on channel 2, still held
    assert wait_until(lambda: (0x91, 64, 100) in ports.sent)
    server.stop()
    assert (0x81, 64, 0) in ports.sent
    assert ports.sent.index((0x81, 64, 0)) > ports.sent.index((0x91, 64, 100))
    assert ports.closed


def test_serving_rule_models_never_imports_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from musebridge.daemon.server import Server, ServerConfig\n"
        "server = Server(ServerConfig(preset='transpose', midi_backend='none', osc_port=0))\n"
        "server.start()\n"
        "server.stop()\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_a_mode_switch_loads_its_model_before_the_first_job(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    preset = tmp_path / "rules.yaml"
    preset.write_text("models: {transfer: transpose, interpolate: blend}\ndefaults: {mode: transfer}\n")
    monkeypatch.setattr(server_edges, "open_midi", lambda config, on_message: (FakePorts(), ["MIDI: fake"]))
    server = Server(ServerConfig(preset=str(preset), midi_backend="none", osc_port=0, clock="internal"))
    server.start()
    try:
        assert server.models is not None and "blend" not in server.models.loaded()
        client = OscClient(server.osc.address[1])
        client.send("/musebridge/mode", 5, "interpolate")  # no clips yet: no job, but its model loads
        assert wait_until(lambda: "blend" in server.models.loaded()), server.models.loaded()
        assert server.engine is not None and server.engine.stats().submitted == 0
        client.close()
    finally:
        server.stop()


def test_a_message_the_conductor_refuses_is_logged_like_a_malformed_one(running, caplog) -> None:
    """An unknown genre was answered with /musebridge/error but left no line in the daemon's log,
    while a wrong argument type did: both are refusals of what a controller sent."""
    server, _ = running
    client = OscClient(server.osc.address[1])
    with caplog.at_level("INFO", logger="musebridge"):
        client.send("/musebridge/genre", 1, "polka")
        (reason, _address), = client.wait_for("/musebridge/error", timeout=3.0)
        assert client.request("/musebridge/ping", reply="/musebridge/pong") == ()
    refused = [r.getMessage() for r in caplog.records if "refused /musebridge/genre" in r.getMessage()]
    assert len(refused) == 1 and "polka" in refused[0] and reason in refused[0]
    client.close()


def test_osc_preset_by_path_is_refused_without_the_files_content(running, tmp_path: Path) -> None:
    """Issue 13: /musebridge/preset PATH answered with the first line of any readable file."""
    server, _ = running
    secret = tmp_path / "secret.yaml"
    secret.write_text("root:x:0:0:SECRET-LINE:/root:/bin/bash\n")
    client = OscClient(server.osc.address[1])
    for name in (str(secret), "../../" + secret.name):
        client.send("/musebridge/preset", name)
        (reason, address), = client.wait_for("/musebridge/error", timeout=3.0)
        assert address == "/musebridge/preset" and "by name" in reason and "SECRET" not in reason
        client.received.clear()
    client.close()


@pytest.mark.parametrize(("notes", "length", "fragment"), [(3000, 100_000.0, "at most 1024 groups"),
                                                             (10, 100_000.0, "'length'"),
                                                             (10, 64.0, "'start'")])
def test_a_clip_over_the_documented_limits_is_refused_before_any_work(
    running, notes: int, length: float, fragment: str
) -> None:
    """Issue 13: 3,000 notes over 100,000 beats drove the model child past 3 GB."""
    server, _ = running
    client = OscClient(server.osc.address[1])
    flat: list[object] = []
    for index in range(notes):
        start = index * (length / notes) if fragment != "'start'" else 300.0 + index
        flat += [60, float(start), 0.5, 100]
    client.send("/musebridge/clip", 1, "in", length, *flat)
    (reason, address), = client.wait_for("/musebridge/error", timeout=3.0)
    assert address == "/musebridge/clip" and fragment in reason, reason
    assert server.engine is not None and server.engine.stats().submitted == 0
    client.close()
