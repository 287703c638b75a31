"""Recovery (issue 13): the JACK server killed and started again, a named port that disappears and
comes back, on the JACK backend (JACK's own notifications, checked by polling) and on the rtmidi
backend (polling). Each loss is a WARNING and a /musebridge/midi "lost" message; each return
reconnects the ports (and the user's connections) and says "ok"."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from jack_harness import JackServer, MidiTestClient, jackd_missing_reason

from musebridge.bench.daemon import DaemonProcess, OscClient

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(jackd_missing_reason() is not None,
                                                  reason=f"needs jackd: {jackd_missing_reason()}")]


def _midi_states(client: OscClient, count: int, timeout: float = 15.0) -> list[tuple[str, str]]:
    found = client.wait_for("/musebridge/midi", timeout=timeout, count=count)
    assert len(found) >= count, f"/musebridge/midi messages: {found}"
    return [tuple(args) for args in found]


def _until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _connected(peer: MidiTestClient, ours: str) -> bool:
    port = peer.port_name("out") if ours == "musebridge:in" else peer.port_name("in")
    return ours in {p.name for p in peer.client.get_all_connections(port)}


def test_the_jack_server_killed_and_started_again(tmp_path) -> None:
    """Issue 13: the daemon survived with one ERROR but never reconnected, said nothing over OSC,
    and its status still showed the MIDI clock playing."""
    server = JackServer.start()
    daemon = None
    try:
        daemon = DaemonProcess(["--midi-backend", "jack", "--clock", "midi", "--preset", "default",
                                "--log-level", "info"], env=server.env).start()
        client = OscClient(daemon.osc_port)
        client.request("/musebridge/hello", client.port, reply="/musebridge/welcome")
        peer = MidiTestClient("peer", servername=server.name)
        peer.connect_to("musebridge:in")  # the user's connections
        peer.connect_from("musebridge:out")
        peer.send_now((0xFA,))  # the DAW's MIDI clock: start, then ticks at 120 BPM
        start = peer.frame_now() + 2 * peer.blocksize
        for tick in range(24 * 16):
            peer.send_at_frame((0xF8,), start + round(tick * peer.samplerate / 48))
        peer.send_now((0x90, 60, 100))
        assert peer.wait_for(1)[0].data == (0x90, 60, 100)
        assert _until(lambda: client.request("/musebridge/status", reply="/musebridge/status")[3] == 1)

        client.received.clear()
        server.kill()
        peer.abandon()
        assert ("midi", "lost") in [tuple(a) for a in client.wait_for("/musebridge/clock", timeout=10.0)]
        assert _midi_states(client, 1)[0][0] == "lost"
        status = client.request("/musebridge/status", reply="/musebridge/status")
        assert status[1] == "midi (lost)" and status[3] == 0  # clock lost, not playing
        assert _midi_states(client, 2)[1][0] == "lost"  # the status reply is followed by the ports' state

        server = server.restart()
        peer = MidiTestClient("peer", servername=server.name)
        state, detail = _midi_states(client, 3)[2]  # the ports back
        assert state == "ok" and "JACK server back" in detail
        assert _until(lambda: _connected(peer, "musebridge:in") and _connected(peer, "musebridge:out"))
        peer.send_now((0x90, 62, 100))
        assert any(e.data == (0x90, 62, 100) for e in peer.wait_for(1))
        peer.send_now((0x80, 62, 0))
        peer.wait_for(2)
        assert any(" WARNING " in line and "MIDI ports lost" in line for line in daemon.lines)
        client.close()
        assert daemon.stop() == 0
        peer.close()
    finally:
        if daemon is not None:
            daemon.kill()
        server.stop()


def test_a_named_jack_port_that_disappears_and_comes_back(tmp_path) -> None:
    """Issue 13: with --midi-in NAME nothing arrived after the port came back; only an INFO line."""
    server = JackServer.start()
    daemon = None
    try:
        source = MidiTestClient("keys", servername=server.name)
        sink = MidiTestClient("sink", servername=server.name)
        daemon = DaemonProcess(["--midi-backend", "jack", "--clock", "internal", "--preset", "default",
                                "--midi-in", "keys:out", "--midi-out", "sink:in", "--log-level", "info"],
                               env=server.env).start()
        client = OscClient(daemon.osc_port)
        client.request("/musebridge/hello", client.port, reply="/musebridge/welcome")
        source.close()
        sink.close()
        lost = _midi_states(client, 2)
        assert {state for state, _ in lost} == {"lost"}
        assert any("'keys:out' gone" in detail for _, detail in lost)
        source = MidiTestClient("keys", servername=server.name)
        sink = MidiTestClient("sink", servername=server.name)
        back = _midi_states(client, 4)[2:]
        assert {state for state, _ in back} == {"ok"}
        assert _until(lambda: _connected(source, "musebridge:in") and _connected(sink, "musebridge:out"))
        source.send_now((0x90, 64, 100))
        assert any(e.data == (0x90, 64, 100) for e in sink.wait_for(1))
        source.send_now((0x80, 64, 0))
        assert any(" WARNING " in line and "'keys:out' gone" in line for line in daemon.lines)
        client.close()
        assert daemon.stop() == 0
        source.close()
        sink.close()
    finally:
        if daemon is not None:
            daemon.kill()
        server.stop()


# rtmidi's JACK API in a process of its own (it must not share one with JACK-Client callbacks)
RTMIDI_WATCH = """
import queue, sys, time
from musebridge.io.rtmidi_ports import RtMidiPorts
inbox = queue.SimpleQueue()
midi = RtMidiPorts("rtmidi-jack", client_name="rtwatch", midi_in="keys:out")
midi.open(lambda data, when: inbox.put(data))
print("ready", flush=True)
deadline = time.monotonic() + 40
while time.monotonic() < deadline:
    for state, detail in midi.poll():
        print(state, detail, flush=True)
    while not inbox.empty():
        data = inbox.get()
        print("got", *data, flush=True)
        if data == (0xFC,):  # Stop: close the ports (the JACK server then stops at once)
            deadline = 0
    time.sleep(0.1)
midi.close()
"""


def test_a_named_rtmidi_port_that_disappears_and_comes_back() -> None:
    server = JackServer.start()
    watch = None
    try:
        source = MidiTestClient("keys", servername=server.name)
        watch = subprocess.Popen([sys.executable, "-c", RTMIDI_WATCH], env=server.env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert watch.stdout is not None and watch.stdout.readline().strip() == "ready"
        source.close()
        assert watch.stdout.readline().startswith("lost MIDI input port 'keys:out' gone")
        source = MidiTestClient("keys", servername=server.name)
        assert watch.stdout.readline().startswith("back MIDI input port")
        source.send_now((0x90, 65, 100))
        assert watch.stdout.readline().strip() == "got 144 65 100"
        source.send_now((0xFC,))
        assert watch.wait(timeout=10) == 0
        source.close()
    finally:
        if watch is not None:
            watch.kill()
            watch.wait()
        server.stop()
