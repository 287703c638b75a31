"""Measure the JACK MIDI ports' timing on a private `jackd -d dummy` (not a test: prints figures).

    nice python tests/e2e/measure_midi_timing.py [--events 1000]

- output: JackMidiPorts.send_at(data, t) handed over ahead of time; error = the time of the frame the
  receiving client got it on - t (the receiver stamps frames with its own JackClock);
- input: a probe writes events at known frames; error = the daemon's stamp - the probe's time of that frame;
- lead: how far ahead send_at must be called: the share of events that go out late per lead.
--busy-thread adds a CPU-bound pure-Python thread (GIL contention) to the process.
"""

from __future__ import annotations

import argparse
import queue
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import jack_harness  # noqa: E402
from jack_harness import percentile  # noqa: E402

from musebridge.io.jack_midi import JackMidiPorts  # noqa: E402


def summary(name: str, errors_s: list[float], samplerate: int, expected: int) -> None:
    magnitudes = [abs(e) for e in errors_s]
    print(
        f"{name}: n={len(errors_s)}/{expected} lost={expected - len(errors_s)} "
        f"|error| p50={percentile(magnitudes, 50) * 1e6:.1f} us "
        f"p99={percentile(magnitudes, 99) * 1e6:.1f} us "
        f"max={max(magnitudes) * 1e6:.1f} us (1 frame = {1e6 / samplerate:.1f} us); "
        f"signed mean={sum(errors_s) / len(errors_s) * 1e6:+.1f} us"
    )


def _busy_python() -> None:
    """A pure-Python CPU hog (what a model's Python-level generation loop looks like to the GIL)."""
    total = 0
    while True:
        for value in range(10000):
            total += value * value


def measure(events: int, busy_thread: bool = False) -> None:
    if busy_thread:
        threading.Thread(target=_busy_python, daemon=True).start()
        print("with a busy pure-Python thread in the process")
    server = jack_harness.JackServer.start()
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    ports = JackMidiPorts(servername=server.name)
    ports.open(lambda data, when: inbox.put((data, when)))
    sender = jack_harness.MidiTestClient("sender", servername=server.name)
    receiver = jack_harness.MidiTestClient("receiver", servername=server.name)
    try:
        print(f"jackd dummy {server.samplerate} Hz, {server.period} frames/period, "
              f"realtime={server.realtime}")
        sender.connect_to("musebridge:in")
        receiver.connect_from("musebridge:out")
        rng = random.Random(1)
        rate = receiver.samplerate

        # output: batches of 100 events over 0.5 s, handed over >= 50 ms ahead
        wanted: dict[int, float] = {}
        for batch in range(0, events, 100):
            start = time.perf_counter() + 0.05
            for index in range(batch, min(events, batch + 100)):
                wanted[index] = start + rng.uniform(0, 0.5)
                ports.send_at((0x90 | (index >> 7) % 16, index & 0x7F, 1 + index % 127), wanted[index])
            time.sleep(0.55)
        received = receiver.wait_for(events, timeout=3)
        errors = []
        for event in received:
            index = ((event.data[0] & 0x0F) << 7) | event.data[1]
            errors.append(event.time - wanted[index])
        summary("output send_at", errors, rate, events)
        print(f"  daemon stats {ports.stats()}")

        # input: the sender writes at known frames; compare the daemon's stamps with the sender's times
        stamps = []
        for batch in range(0, events, 100):
            first = sender.frame_now() + rate // 20
            for index in range(batch, min(events, batch + 100)):
                frame = first + rng.randrange(rate // 2)
                sender.send_at_frame((0x80 | (index >> 7) % 16, index & 0x7F, 0), frame)
            sender.wait_until_sent()
        written = {((e.data[0] & 0x0F) << 7) | e.data[1]: e for e in sender.sent}
        deadline = time.monotonic() + 3
        while len(stamps) < events and time.monotonic() < deadline:
            try:
                data, when = inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            stamps.append(when - written[((data[0] & 0x0F) << 7) | data[1]].time)
        summary("input stamps", stamps, rate, events)

        # lead: hand events over `lead` before their time; count those that could not be on time
        for lead_ms in (1, 3, 6, 11, 16, 22):
            before = ports.stats()["late_out"]
            for _ in range(50):
                ports.send_at((0xB0, 20, 0), time.perf_counter() + lead_ms / 1000)
                time.sleep(0.0137)
            ports_wait = time.perf_counter() + 0.1
            while time.perf_counter() < ports_wait:
                time.sleep(0.01)
            late = ports.stats()["late_out"] - before
            print(f"lead {lead_ms:2d} ms: {late}/50 late")
        print(f"period {server.period / rate * 1e3:.2f} ms; recommended lead (ports.output_lead) "
              f"{ports.output_lead * 1e3:.1f} ms")
    finally:
        ports.close()
        sender.close()
        receiver.close()
        server.stop()


def measure_rtmidi_timer(events: int) -> None:
    """Lateness of the rtmidi backends' send_at timer thread (before the MIDI API's own latency)."""
    from musebridge.io.rtmidi_ports import _TimedSender

    lateness: list[float] = []
    due: dict[bytes, float] = {}
    timer = _TimedSender(lambda message: lateness.append(time.perf_counter() - due[message]))
    timer.start()
    rng = random.Random(0)
    base = time.perf_counter() + 0.02
    for index in range(events):
        message = index.to_bytes(3, "big")
        due[message] = base + rng.uniform(0, 2.0)
        timer.schedule(due[message], message)
    time.sleep(2.2)
    timer.stop()
    summary("rtmidi timer thread lateness", lateness, 48000, events)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--busy-thread", action="store_true", help="run a CPU-bound Python thread meanwhile")
    args = parser.parse_args()
    measure(args.events, args.busy_thread)
    measure_rtmidi_timer(min(args.events, 500))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
