"""`musebridge serve` over real UDP: mode and tempo changes (python-osc and oscsend), garbage, signals."""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from jack_harness import MidiTestClient

from musebridge.bench.daemon import DaemonProcess, OscClient

pytestmark = pytest.mark.e2e

TICK_FRAMES = 500  # 240 BPM at 48 kHz
BEAT_FRAMES = 24 * TICK_FRAMES


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.stop(timeout=5)


def start(daemons: list[DaemonProcess], *args: str, env: dict[str, str] | None = None) -> DaemonProcess:
    daemon = DaemonProcess(["--log-level", "warning", *args], env=env)
    daemons.append(daemon.start())
    return daemon


def status(client: OscClient) -> dict[str, object]:
    names = ("mode", "clock", "tempo", "playing", "beat", "model", "queue", "late", "latency_ms", "errors")
    return dict(zip(names, client.request("/musebridge/status", reply="/musebridge/status"), strict=True))


THRU_THEN_TRANSPOSE = """\
name: thru-then-transpose
meter: "4/4"
grid: {steps: 4, per: beat}
models: {transfer: transpose}
model_options:
  transpose: {semitones: 12}
defaults: {mode: thru, phrase_bars: 4}
echo_input: false
"""


def test_mode_change_over_osc_switches_thru_to_transfer(jack_server, midi_client, daemons, tmp_path) -> None:
    preset = tmp_path / "thru-then-transpose.yaml"  # starts in thru; transfer runs the rule model
    preset.write_text(THRU_THEN_TRANSPOSE, encoding="utf-8")
    daemon = start(daemons, "--midi-backend", "jack", "--preset", str(preset), "--clock", "midi",
                   env=jack_server.env)
    probe: MidiTestClient = midi_client("probe")
    probe.connect_to("musebridge:in")
    probe.connect_from("musebridge:out")
    client = OscClient(daemon.osc_port)
    origin = probe.frame_now() + int(0.15 * probe.samplerate)
    probe.send_at_frame([0xFA], origin - 100)
    for tick in range(24 * 32):  # 8 bars: room for a slow machine
        probe.send_at_frame([0xF8], origin + tick * TICK_FRAMES)
    probe.send_at_frame([0x90, 60, 100], origin)  # thru: comes straight back
    probe.send_at_frame([0x80, 60, 0], origin + BEAT_FRAMES // 2)
    thru = probe.wait_for(2, timeout=3.0)
    assert [e.data[:2] for e in thru if e.data[0] & 0xF0 in (0x80, 0x90)] == [(0x90, 60), (0x80, 60)]

    client.send("/musebridge/bars", 1, 1)  # track 1 = MIDI channel 1
    client.send("/musebridge/mode", 1, "transfer")
    assert status(client)["mode"] == "transfer"  # status is answered after both were applied
    probe.clear()
    bar = 2 + (probe.frame_now() - origin) // (4 * BEAT_FRAMES)  # a bar at least one bar ahead
    played_at = origin + bar * 4 * BEAT_FRAMES
    probe.send_at_frame([0x90, 62, 100], played_at)
    probe.send_at_frame([0x80, 62, 0], played_at + BEAT_FRAMES)
    deadline = time.monotonic() + 8.0
    while time.monotonic() < deadline:
        answer = [e for e in probe.received if e.data[0] == 0x90 and e.data[1] == 74]
        if answer:
            break
        time.sleep(0.01)
    assert answer, f"no transposed answer; received {list(probe.received)}"
    answer_beat = (answer[0].frame - origin) / BEAT_FRAMES
    assert (bar + 1) * 4 - 0.001 <= answer_beat < (bar + 1) * 4 + 0.05  # on the next bar's downbeat
    assert not [e for e in probe.received if e.data[1] == 62 and e.data[0] == 0x90]  # no echo in transfer
    client.close()


def test_tempo_over_osc_with_python_osc_and_oscsend(daemons) -> None:
    if shutil.which("oscsend") is None:
        pytest.skip("oscsend not found (Debian package liblo-tools)")
    daemon = start(daemons, "--midi-backend", "none", "--clock", "internal", "--tempo", "100")
    client = OscClient(daemon.osc_port)
    assert status(client)["tempo"] == pytest.approx(100.0)
    client.send("/musebridge/tempo", 150.0)
    assert status(client)["tempo"] == pytest.approx(150.0)
    subprocess.run(["oscsend", "127.0.0.1", str(daemon.osc_port), "/musebridge/tempo", "f", "90"],
                   check=True, timeout=10)
    deadline = time.monotonic() + 3.0
    while status(client)["tempo"] != pytest.approx(90.0) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert status(client)["tempo"] == pytest.approx(90.0)
    client.send("/musebridge/tempo", 1000.0)  # out of range: refused, tempo kept
    (reason, address), = client.wait_for("/musebridge/error", timeout=3.0)
    assert address == "/musebridge/tempo" and reason
    assert status(client)["tempo"] == pytest.approx(90.0)
    client.close()


def test_liblo_oscsend_oscdump_session_sees_the_replies(daemons) -> None:
    """The README's liblo session: oscsend sends each message from a new port; after
    /musebridge/hello PORT every reply to that host (pong, status, error) reaches oscdump on PORT."""
    if shutil.which("oscsend") is None or shutil.which("oscdump") is None:
        pytest.skip("oscsend/oscdump not found (Debian package liblo-tools)")
    daemon = start(daemons, "--midi-backend", "none", "--clock", "internal")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        dump_port = probe.getsockname()[1]
    dump = subprocess.Popen(["oscdump", "-L", str(dump_port)], stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(dump.stdout or ()), daemon=True).start()
    try:
        def send(*args: str) -> None:
            subprocess.run(["oscsend", "localhost", str(daemon.osc_port), *args], check=True, timeout=10)

        time.sleep(0.3)  # oscdump binds its port
        send("/musebridge/hello", "i", str(dump_port))
        send("/musebridge/ping")
        send("/musebridge/status")
        send("/musebridge/mode", "is", "1", "karaoke")
        deadline = time.monotonic() + 5.0
        wanted = ("/musebridge/welcome", "/musebridge/pong", "/musebridge/status", "/musebridge/error")
        while time.monotonic() < deadline and not all(any(w in line for line in lines) for w in wanted):
            time.sleep(0.05)
        assert all(any(w in line for line in lines) for w in wanted), lines
    finally:
        dump.terminate()
        dump.wait(5)


def test_garbage_datagrams_get_errors_and_the_daemon_stays_up(daemons) -> None:
    daemon = start(daemons, "--midi-backend", "none")
    client = OscClient(daemon.osc_port)
    rng = random.Random(11)
    garbage = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))) for _ in range(30)]
    garbage += [
        b"/musebridge/mode\x00\x00\x00\x00,i\x00\x00",  # truncated: the int is missing
        b"#bundle\x00" + bytes(8),  # bundles are refused
        b"/nope\x00\x00\x00,\x00\x00\x00",  # unknown address
    ]
    for datagram in garbage:
        client.send_raw(datagram)
    client.send("/musebridge/mode", 1, "nonsense")
    client.send("/musebridge/panic", 3)
    errors = client.wait_for("/musebridge/error", timeout=5.0, count=len(garbage) + 2)
    assert len(errors) == len(garbage) + 2
    assert all(isinstance(reason, str) and reason for reason, _ in errors)
    assert client.request("/musebridge/ping", reply="/musebridge/pong") == ()
    assert status(client)["errors"] == len(garbage) + 2
    assert daemon.alive and "Traceback" not in daemon.output()
    client.close()


def test_sigint_stops_cleanly(daemons) -> None:
    daemon = start(daemons, "--midi-backend", "none")
    client = OscClient(daemon.osc_port)
    assert client.request("/musebridge/ping", reply="/musebridge/pong") == ()
    assert daemon.stop(signal.SIGINT) == 0
    assert "all notes off" in daemon.output()
    client.close()
