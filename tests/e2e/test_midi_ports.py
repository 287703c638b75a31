"""The JACK MIDI ports against a real `jackd -d dummy`: names, input stamps, output frames, bad bytes."""

from __future__ import annotations

import argparse
import json
import queue
import random
import subprocess
import sys
import time
from collections import Counter

import pytest

from musebridge.commands import ports as ports_command
from musebridge.errors import UserError
from musebridge.io.jack_midi import MAX_EVENTS_PER_CYCLE, JackMidiPorts, jack_server_running, list_jack_ports
from musebridge.io.midi_ports import MidiPorts, alsa_problem, create_midi_ports, resolve_backend

pytestmark = pytest.mark.e2e

EVENTS = 40
MAX_LOST = 2  # the dummy driver may drop a rare event under load: bound losses, do not assume none


class Inbox:
    """on_message for the ports: enqueue only, as the daemon does."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue = queue.SimpleQueue()

    def __call__(self, data: tuple[int, ...], when: float) -> None:
        self.queue.put((data, when))

    def drain(self, count: int, timeout: float = 3.0) -> list[tuple[tuple[int, ...], float]]:
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            try:
                got.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return got


@pytest.fixture
def ports(jack_server):
    inbox = Inbox()
    midi = JackMidiPorts()
    midi.open(inbox)
    midi.inbox = inbox
    yield midi
    midi.close()


def test_one_client_named_musebridge_with_in_and_out(jack_server, ports):
    names = jack_server.ports()
    assert "musebridge:in" in names and "musebridge:out" in names
    assert not [name for name in names if name.startswith("musebridge-")]
    assert isinstance(ports, MidiPorts)
    assert ports.supports_timed_output
    with pytest.raises(UserError, match="already exists"):
        JackMidiPorts().open(Inbox())


def test_incoming_events_carry_the_time_of_their_frame(ports, midi_client):
    probe = midi_client("probe")
    probe.connect_to("musebridge:in")
    rng = random.Random(3)
    first = probe.frame_now() + probe.samplerate // 10
    frames = sorted(first + rng.randrange(0, probe.samplerate // 2) for _ in range(EVENTS))
    for index, frame in enumerate(frames):
        probe.send_at_frame((0x90, index, 100), frame)
    got = ports.inbox.drain(EVENTS)
    assert len(got) >= EVENTS - MAX_LOST
    written = {event.data[1]: event for event in probe.sent}  # frame and time as the sender wrote them
    assert [written[index].frame for index in sorted(written)] == frames[: len(written)]
    errors = [(when - written[data[1]].time) * probe.samplerate for data, when in got]
    on_frame = [error for error in errors if abs(error) < 1.0]  # frames
    assert len(on_frame) >= EVENTS - MAX_LOST, errors  # an xrun under load may displace a rare one
    assert ports.stats()["received"] == len(got)


def test_send_at_lands_on_the_requested_frame(ports, midi_client):
    receiver = midi_client("rx")
    receiver.connect_from("musebridge:out")
    start = time.perf_counter() + 0.05
    rng = random.Random(5)
    wanted = sorted(start + rng.uniform(0, 0.4) for _ in range(EVENTS))
    for index, when in enumerate(wanted):
        ports.send_at((0x90, index, 64), when)
    events = receiver.wait_for(EVENTS, timeout=3)
    diagnostics = f"stats {ports.stats()}, receiver xruns {receiver.xruns}"
    assert len(events) >= EVENTS - MAX_LOST, diagnostics
    errors = [(event.time - wanted[event.data[1]]) * receiver.samplerate for event in events]
    on_frame = [error for error in errors if abs(error) < 2.0]  # frames
    assert len(on_frame) >= EVENTS - MAX_LOST, f"{errors} {diagnostics}"
    assert ports.stats()["late_out"] <= MAX_LOST, diagnostics


def test_late_and_immediate_output_go_out_at_once(ports, midi_client):
    receiver = midi_client("rx2")
    receiver.connect_from("musebridge:out")
    before = time.perf_counter()
    ports.send_now((0xB0, 1, 2))
    ports.send_at((0xB0, 1, 3), before - 1.0)  # a second late
    events = receiver.wait_for(2)
    assert [e.data for e in events] == [(0xB0, 1, 2), (0xB0, 1, 3)]
    period = receiver.blocksize / receiver.samplerate
    assert all(before - period <= e.time <= before + 3 * period for e in events)
    assert ports.stats()["late_out"] == 1


def test_malformed_output_is_refused_in_the_caller(ports):
    for bad in [(), (0x40, 1), (0x90, 60), (0x90, 200, 1), (0xF0, 1, 2), (0xF4,)]:
        with pytest.raises(ValueError, match="not a MIDI message"):
            ports.send_at(bad, time.perf_counter())


def test_random_bytes_do_not_kill_the_client(ports, midi_client):
    probe = midi_client("noise")
    probe.connect_to("musebridge:in")
    rng = random.Random(11)
    frame = probe.frame_now() + probe.samplerate // 20
    garbage = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8))) for _ in range(200)]
    for index, data in enumerate(garbage):
        probe.send_at_frame(tuple(data), frame + index * 7)
    probe.send_at_frame((0x90, 1, 1), frame + 200 * 7 + 10)
    probe.wait_until_sent()
    cycles = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        data, _ = ports.inbox.queue.get(timeout=3)
        if data == (0x90, 1, 1):
            break
        cycles += 1
    stats = ports.stats()
    assert stats["callback_errors"] == 0
    assert stats["invalid_in"] > 0
    assert ports.alive and ports.client.status is not None
    ports.send_now((0x80, 1, 0))  # still writes


def test_close_releases_held_notes_and_sends_all_notes_off(jack_server, midi_client):
    receiver = midi_client("rx3")
    midi = JackMidiPorts()
    midi.open(Inbox())
    receiver.connect_from("musebridge:out")
    midi.send_now((0x92, 64, 90))
    midi.send_now((0x92, 65, 90))
    midi.send_now((0x82, 65, 0))
    midi.send_at((0x92, 66, 90), time.perf_counter() + 30)  # pending: dropped by close
    receiver.wait_for(3)
    midi.close()
    events = receiver.wait_for(3 + 1 + 32)
    after = [e.data for e in events[3:]]
    assert after[0] == (0x82, 64, 0)  # the held note is released first
    assert (0x92, 66, 90) not in after
    assert {(0xB0 | ch, 123, 0) for ch in range(16)} <= set(after)
    assert "musebridge:in" not in jack_server.ports()


def test_connect_to_existing_ports_by_name(jack_server, midi_client):
    source = midi_client("keys")
    sink = midi_client("synth")
    midi = JackMidiPorts(connect_in="keys:out", connect_out="synth")  # exact, then substring
    midi.open(Inbox())
    try:
        assert "musebridge:in" in [p.name for p in source.client.get_all_connections("keys:out")]
        assert "musebridge:out" in [p.name for p in sink.client.get_all_connections("synth:in")]
    finally:
        midi.close()
    with pytest.raises(UserError, match="no MIDI input port matches 'nothing'.*keys:out"):
        JackMidiPorts(connect_in="nothing").open(Inbox())
    assert "musebridge:in" not in jack_server.ports()  # a failed open leaves nothing behind


def test_auto_finds_the_running_jack_server(jack_server):
    assert jack_server_running()
    assert resolve_backend("auto")[0] == ("alsa" if alsa_problem() is None else "jack")
    listing = list_jack_ports()
    assert listing.available
    assert "system:capture_1" not in listing.inputs  # audio ports are not listed


def test_auto_without_any_midi_system_says_why(jack_server, monkeypatch, caplog):
    if alsa_problem() is None:
        pytest.skip("this machine has an ALSA sequencer")
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "musebridge-no-such-server")
    backend, why = resolve_backend("auto")
    assert backend == "none"
    assert "no ALSA sequencer" in why and "no JACK server running" in why
    with caplog.at_level("WARNING", logger="musebridge.midi"):
        midi = create_midi_ports("auto")
    assert midi.backend == "none"
    assert len([r for r in caplog.records if "no MIDI system" in r.getMessage()]) == 1
    with pytest.raises(UserError, match="no JACK server running"):
        create_midi_ports("jack").open(Inbox())


def _ports_command(argv: list[str]) -> int:
    """`musebridge ports ARGV` without importing every other command (some import torch)."""
    parser = argparse.ArgumentParser()
    ports_command.register(parser.add_subparsers())
    args = parser.parse_args(["ports", *argv])
    return args.handler(args)


def test_ports_command_lists_jack_ports(ports, capsys):
    assert _ports_command(["--midi-backend", "jack"]) == 0
    out = capsys.readouterr().out
    assert "musebridge:in" in out and "musebridge:out" in out
    assert _ports_command(["--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    jack_listing = next(b for b in listing["backends"] if b["backend"] == "jack")
    assert "musebridge:out" in jack_listing["inputs"] and "musebridge:in" in jack_listing["outputs"]
    assert listing["auto"]["backend"] in ("alsa", "jack")


# rtmidi's JACK client is opened while holding the GIL; in a process that also runs JACK-Client
# clients with Python callbacks (the test probes) that can deadlock, so the rtmidi side runs apart.
RTMIDI_ECHO = """
import queue, sys, time
from musebridge.io.rtmidi_ports import RtMidiPorts
from musebridge.errors import UserError
inbox = queue.SimpleQueue()
midi = RtMidiPorts("rtmidi-jack", client_name=sys.argv[1], midi_in=sys.argv[2] or None,
                   midi_out=sys.argv[3] or None)
try:
    midi.open(lambda data, when: inbox.put((data, when)))
except UserError as error:
    print("error:", error, flush=True)
    raise SystemExit(2)
print("ready", midi.input_port_name, "|", midi.output_port_name, flush=True)
while True:
    data, when = inbox.get()
    if data == (0xFC,):  # Stop: close and exit
        break
    delay = time.perf_counter() - when
    midi.send_at((data[0] + 1, data[1], data[2]), when + 0.05)  # echo on the next channel, 50 ms later
    print("stamp-age", delay, flush=True)
midi.close()
print("stats", midi.stats(), flush=True)
"""


def _rtmidi_echo(jack_server, name: str, midi_in: str = "", midi_out: str = "") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RTMIDI_ECHO, name, midi_in, midi_out], env=jack_server.env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def test_rtmidi_backend_virtual_ports_through_jack(jack_server, midi_client):
    """The rtmidi code path (ALSA/CoreMIDI/WinMM) exercised on rtmidi's JACK API."""
    echo = _rtmidi_echo(jack_server, "rtbridge")
    try:
        assert echo.stdout.readline().startswith("ready rtbridge in | rtbridge out")
        probe = midi_client("rtprobe")
        probe.connect_to("rtbridge in")  # found by listing: rtmidi names it <client>:<port>
        probe.connect_from("rtbridge out")
        probe.send_now((0xF4,))  # undefined status: dropped and counted, never raised
        probe.send_now((0x90, 60, 100))
        event = probe.wait_for(1)[0]
        sent = probe.sent[-1]
        assert event.data == (0x91, 60, 100)
        assert abs(event.time - sent.time - 0.05) < 0.02  # stamp + timer thread: loose bounds
        assert 0 <= float(echo.stdout.readline().split()[1]) < 0.1
        probe.send_now((0xFC,))
        output, _ = echo.communicate(timeout=10)
    finally:
        echo.kill()
    assert echo.returncode == 0, output
    assert "'invalid_in': 1" in output and "'callback_errors': 0" in output
    released = [e.data for e in probe.wait_for(1 + 1 + 32)][1:]
    assert released[0] == (0x81, 60, 0)  # the echoed note was still held: released on close
    assert (0xB0, 123, 0) in released


def test_rtmidi_backend_connects_existing_ports_by_name(jack_server, midi_client):
    midi_client("loop1")
    echo = _rtmidi_echo(jack_server, "rtnamed", "loop1:out", "loop1:in")
    try:
        assert echo.stdout.readline().strip() == "ready loop1:out | loop1:in"
    finally:
        echo.kill()
        echo.wait()
    bad = _rtmidi_echo(jack_server, "rtbad", "absent")
    output, _ = bad.communicate(timeout=20)
    assert bad.returncode == 2
    assert "no MIDI input port matches 'absent'" in output and "loop1:out" in output


def test_a_vanishing_peer_is_logged(ports, midi_client, caplog):
    peer = midi_client("leaving")
    peer.connect_to("musebridge:in")
    with caplog.at_level("INFO", logger="musebridge.midi.jack"):
        peer.close()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not any("-/->" in r.getMessage() for r in caplog.records):
            time.sleep(0.01)
    assert any(r.getMessage() == "JACK: leaving:out -/-> musebridge:in" for r in caplog.records)
    assert ports.alive
    ports.send_now((0x90, 1, 1))


def test_open_lowers_the_switch_interval_and_close_restores_it(jack_server):
    saved = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        midi = JackMidiPorts()
        midi.open(Inbox())
        assert sys.getswitchinterval() <= 0.0005 + 1e-9  # the process callback must get the GIL in time
        midi.close()
        assert abs(sys.getswitchinterval() - 0.005) < 1e-9
    finally:
        sys.setswitchinterval(saved)


def test_panic_releases_more_notes_than_one_cycle_carries(ports, midi_client):
    receiver = midi_client("rx4")
    receiver.connect_from("musebridge:out")
    chord = [(0x90 | channel, pitch, 80) for channel in range(16) for pitch in range(20, 60)]  # 640 notes
    for message in chord:
        ports.send_now(message)  # more than a 256-frame MIDI buffer holds: spread over cycles
    assert len(receiver.wait_for(len(chord))) >= len(chord) - MAX_LOST
    ports.panic()
    ports.send_now((0x9F, 1, 1))  # after the panic: must come after every release
    events = [e.data for e in receiver.wait_for(2 * len(chord) + 32 + 1)][len(chord):]
    releases = {(0x80 | (status & 0x0F), pitch, 0) for status, pitch, _ in chord}
    assert len(set(events) & releases) >= len(releases) - MAX_LOST
    assert events[-1] == (0x9F, 1, 1)
    assert ports.stats()["retried_out"] > 0  # the chord and its releases were spread over cycles
    assert max(Counter(e.frame for e in receiver.received).values()) <= MAX_EVENTS_PER_CYCLE


class ThruInbox(Inbox):
    """set_thru's on_message: every event with what was forwarded of it."""

    def __call__(self, data: tuple[int, ...], when: float, forwarded: bytes | None = None) -> None:
        self.queue.put((data, when, forwarded))


def to_channel_2(data: tuple[int, ...]) -> bytes | None:
    """Route: channel-1 messages go out on channel 2; pitch 99 makes the route fail; others stay."""
    if data[0] & 0x0F != 0:
        return None
    if len(data) > 1 and data[1] == 99:
        raise RuntimeError("a failing route")
    return bytes((data[0] | 1, *data[1:]))


def test_thru_hook_forwards_at_the_input_frame_merged_with_scheduled_output(ports, midi_client):
    sender = midi_client("thru-tx")
    receiver = midi_client("thru-rx")
    sender.connect_to("musebridge:in")
    receiver.connect_from("musebridge:out")
    thru_inbox = ThruInbox()
    ports.set_thru(to_channel_2, thru_inbox)
    period = sender.blocksize
    first = sender.frame_now() + sender.samplerate // 10
    rng = random.Random(13)
    frames = [first + index * 3 * period + rng.randrange(0, period // 3) for index in range(EVENTS)]
    wanted = [sender.frame_to_time(frame + period // 2) for frame in frames]  # same cycle, later
    for index, frame in enumerate(frames):
        sender.send_at_frame((0x90, index, 100), frame)  # forwarded
        sender.send_at_frame((0x92, index, 100), frame + 1)  # not routed: the conductor's path only
        # scheduled output later in the same cycle: before the hook it made the thru write fail
        ports.send_at((0xB3, index, 1), wanted[index])
    sender.send_at_frame((0x90, 99, 1), frames[-1] + period)  # the route raises: not forwarded
    got = thru_inbox.drain(2 * EVENTS + 1)
    events = receiver.wait_for(2 * EVENTS, timeout=3)
    stats = ports.stats()
    diagnostics = f"stats {stats}, sender xruns {sender.xruns}, receiver xruns {receiver.xruns}"
    assert len(got) >= 2 * EVENTS + 1 - MAX_LOST, diagnostics
    for data, _, forwarded in got:  # every event reached on_message, with what was forwarded of it
        expected = bytes((0x91, *data[1:])) if data[0] == 0x90 and data[1] != 99 else None
        assert forwarded == expected, data
    assert ports.inbox.queue.empty()  # open()'s callback no longer gets the input
    thru = [e for e in events if e.data[0] == 0x91]
    sent = {e.data[1]: e.frame for e in sender.sent if e.data[0] == 0x90}
    delays = Counter(e.frame - sent[e.data[1]] for e in thru)
    assert len(thru) >= EVENTS - MAX_LOST, diagnostics
    assert delays[0] >= EVENTS - MAX_LOST, f"{delays} {diagnostics}"  # same cycle, same frame
    # the scheduled output too lands on its time (both clocks read per cycle: compare times)
    errors = [(e.time - wanted[e.data[1]]) * receiver.samplerate for e in events if e.data[0] == 0xB3]
    on_time = [error for error in errors if abs(error) < 2.0]
    assert len(on_time) >= EVENTS - MAX_LOST, f"{errors} {diagnostics}"
    assert not [e for e in events if e.data[0] & 0x0F == 2 or e.data[1] == 99]
    assert stats["thru"] == len(thru) and stats["thru_late"] == 0, diagnostics
    assert stats["callback_errors"] == 1  # the failing route, counted; the client lives on
    ports.set_thru(None)  # off: open()'s callback gets the input again, nothing is forwarded
    sender.send_now((0x90, 1, 1))
    assert ports.inbox.drain(1)[0][0] == (0x90, 1, 1)


def test_forwarded_notes_are_released_on_close(jack_server, midi_client):
    sender = midi_client("thru-tx2")
    receiver = midi_client("thru-rx2")
    midi = JackMidiPorts()
    midi.open(Inbox())
    midi.set_thru(to_channel_2, ThruInbox())
    sender.connect_to("musebridge:in")
    receiver.connect_from("musebridge:out")
    sender.send_now((0x90, 64, 90))
    sender.send_now((0x90, 65, 90))
    sender.send_now((0x80, 65, 0))
    assert [e.data for e in receiver.wait_for(3)] == [(0x91, 64, 90), (0x91, 65, 90), (0x81, 65, 0)]
    midi.close()
    after = [e.data for e in receiver.received][3:]  # already there: close() waits for the delivery
    assert after[0] == (0x81, 64, 0)  # the forwarded note still held is released first
    assert {(0xB0 | ch, 123, 0) for ch in range(16)} <= set(after)
    assert (0x81, 65, 0) not in after  # a released note is not released again


def test_close_returns_after_the_receivers_got_the_releases(jack_server, midi_client):
    receiver = midi_client("rx5")
    midi = JackMidiPorts()
    midi.open(Inbox())
    receiver.connect_from("musebridge:out")
    midi.send_now((0x95, 70, 90))
    receiver.wait_for(1)
    midi.close()
    after = [e.data for e in receiver.received][1:]  # no waiting here: close() let it arrive
    assert after[:1] == [(0x85, 70, 0)]
    assert len(after) == 1 + 32
