"""The JACK scenarios of `musebridge bench`, each against a `musebridge serve` subprocess.

- thru latency: the same note-on is written at the same frame into the bridge (probe:out_bridge ->
  musebridge:in, musebridge:out -> probe:in_bridge) and into a direct loop (probe:out_direct ->
  probe:in_direct). A loop through a client of the same graph costs JACK one period, so
  added = (bridge arrival - direct arrival) - one period, pairwise.
- output timing under load: MIDI clock from the probe; track 1 transposes 8th notes bar by bar while
  track 2 runs the CPU-busy `busy` model every bar. Timing error of each output event = its arrival
  frame - the frame of its scheduled beat (from the clock the probe sent) - one period (the same
  loop delay). Run with the model in a thread (default and short GIL switch interval) and in a
  child process.
- late jobs: the `transpose` preset at 120 and 200 BPM; late count from /musebridge/status.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from musebridge.bench.daemon import DaemonProcess, OscClient
from musebridge.bench.jack import JackProbe
from musebridge.bench.models import summary_ms

STATUS_FIELDS = (
    "mode", "clock", "tempo", "playing", "beat", "model", "queue", "late", "latency_ms", "errors",
)


def _start(args: Sequence[str], env: dict[str, str]) -> DaemonProcess:
    return DaemonProcess(["--midi-backend", "jack", "--log-level", "warning", *args], env=env).start()


def _status(client: OscClient) -> dict[str, Any]:
    reply = client.request("/musebridge/status", reply="/musebridge/status")
    return dict(zip(STATUS_FIELDS, reply, strict=True))


def thru_latency(env: dict[str, str], servername: str, events: int = 200) -> dict[str, Any]:
    """Latency the bridge adds in thru mode over JACK's own loop (see the module doc)."""
    daemon = _start(["--preset", "default", "--clock", "internal"], env)
    probe = JackProbe("mbprobe", ("bridge", "direct"), servername=servername)
    try:
        probe.connect(f"{probe.name}:out_bridge", "musebridge:in")
        probe.connect("musebridge:out", f"{probe.name}:in_bridge")
        probe.connect(f"{probe.name}:out_direct", f"{probe.name}:in_direct")
        period = probe.period
        spacing = probe.samplerate // 50  # one note every 20 ms
        start = probe.frame_now() + 4 * period
        sent: list[tuple[int, int]] = []
        for index in range(events):
            frame = start + index * spacing + (index * 37) % period  # all offsets within a period
            pitch = 36 + index % 48
            for pair in ("bridge", "direct"):
                probe.send_at_frame(pair, (0x90, pitch, 100), frame)
                probe.send_at_frame(pair, (0x80, pitch, 0), frame + spacing // 2)
            sent.append((frame, pitch))
        probe.wait_until_frame(start + events * spacing + 8 * period)
        probe.wait_cycles(4)
        arrivals = {pair: _note_on_arrivals(probe.received[pair]) for pair in ("bridge", "direct")}
        added, bridge_raw, direct_raw = [], [], []
        for frame, pitch in sent:
            bridge = _first_after(arrivals["bridge"], pitch, frame, frame + spacing)
            direct = _first_after(arrivals["direct"], pitch, frame, frame + spacing)
            if bridge is None or direct is None:
                continue
            added.append((bridge - direct - period) / probe.samplerate)
            bridge_raw.append((bridge - frame) / probe.samplerate)
            direct_raw.append((direct - frame) / probe.samplerate)
        return {
            "events": events,
            "matched": len(added),
            "period_ms": round(period / probe.samplerate * 1000.0, 4),
            "added": summary_ms(added) if added else None,
            "bridge_loop": summary_ms(bridge_raw) if bridge_raw else None,
            "direct_loop": summary_ms(direct_raw) if direct_raw else None,
            "probe_late_writes": probe.late_writes,
            "probe_xruns": probe.xruns,
        }
    finally:
        probe.close()
        daemon.stop()


def _note_on_arrivals(received: Sequence[tuple[int, tuple[int, ...]]]) -> dict[int, list[int]]:
    by_pitch: dict[int, list[int]] = {}
    for frame, data in received:
        if len(data) == 3 and data[0] & 0xF0 == 0x90 and data[2] > 0:
            by_pitch.setdefault(data[1], []).append(frame)
    return by_pitch


def _first_after(arrivals: dict[int, list[int]], pitch: int, low: int, high: int) -> int | None:
    return next((f for f in arrivals.get(pitch, []) if low <= f < high), None)


def _clock_and_eighths(probe: JackProbe, bpm: float, bars: int, channel: int = 0) -> tuple[int, float]:
    """Start + MIDI clock for `bars` + 2 bars, and 8th notes (0.25 beat long) in the first `bars` bars.

    Returns (frame of beat 0, frames per beat)."""
    frames_per_beat = probe.samplerate * 60.0 / bpm
    tick = frames_per_beat / 24.0
    origin = probe.frame_now() + int(0.2 * probe.samplerate)
    probe.send_at_frame("bridge", (0xFA,), origin - probe.period // 2)
    for index in range((bars + 2) * 4 * 24):
        probe.send_at_frame("bridge", (0xF8,), origin + round(index * tick))
    scale = (60, 62, 64, 65, 67, 69, 71, 72)
    for bar in range(bars):
        for eighth in range(8):
            beat = bar * 4 + eighth * 0.5
            pitch = scale[(bar + eighth) % len(scale)]
            probe.send_at_frame("bridge", (0x90 | channel, pitch, 96), origin + round(beat * frames_per_beat))
            probe.send_at_frame("bridge", (0x80 | channel, pitch, 0),
                                origin + round((beat + 0.25) * frames_per_beat))
    return origin, frames_per_beat


def _write_preset(text: str) -> str:
    handle, path = tempfile.mkstemp(prefix="musebridge-bench-", suffix=".yaml")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    return path


LOAD_PRESET = """\
name: bench-load
description: "benchmark: transpose on track 1 (MIDI channel 1) while track 2 runs the busy model every bar"
clock: midi
meter: "4/4"
grid: {{steps: 4, per: beat}}
models: {{transfer: transpose, sample: busy}}
model_options:
  transpose: {{semitones: 12}}
  busy: {{work_ms: {work_ms}, semitones: 0}}
defaults: {{mode: transfer, phrase_bars: 1}}
tracks:
  2: {{mode: sample, phrase_bars: 1}}
"""


def _play_through_bridge(probe: JackProbe, bpm: float, bars: int) -> tuple[int, float]:
    """Loop the probe through the bridge, play MIDI clock and 8th notes for `bars` bars, and wait
    until the bar after them has passed. Returns (origin frame, frames per beat)."""
    probe.connect(f"{probe.name}:out_bridge", "musebridge:in")
    probe.connect("musebridge:out", f"{probe.name}:in_bridge")
    origin, frames_per_beat = _clock_and_eighths(probe, bpm, bars)
    probe.wait_until_frame(origin + round((bars + 1.5) * 4 * frames_per_beat), timeout=bars * 10.0)
    probe.wait_cycles(4)
    return origin, frames_per_beat


def timing_under_load(
    env: dict[str, str], servername: str, *, isolation: str, switch_interval_ms: float, work_ms: float,
    bars: int, bpm: float = 120.0,
) -> dict[str, Any]:
    """Output timing error of track 1 while track 2's busy model runs (see the module doc)."""
    preset = _write_preset(LOAD_PRESET.format(work_ms=work_ms))
    daemon = _start(["--preset", preset, "--clock", "midi", "--isolation", isolation,
                     "--switch-interval-ms", str(switch_interval_ms)], env)
    probe = JackProbe("mbprobe", ("bridge",), servername=servername)
    client = OscClient(daemon.osc_port)
    try:
        origin, frames_per_beat = _play_through_bridge(probe, bpm, bars)
        status = _status(client)
        errors = []
        quarter = frames_per_beat / 4.0  # every output event sits on a 16th
        for frame, data in probe.received["bridge"]:
            if data[0] & 0xF0 not in (0x80, 0x90) or data[0] & 0x0F != 0:
                continue
            offset = frame - origin - probe.period
            nearest = round(offset / quarter) * quarter
            errors.append((offset - nearest) / probe.samplerate)
        expected = (bars - 1) * 16  # bars 1..bars-1 answer bars 0..bars-2 with 8 notes (on + off)
        return {
            "isolation": isolation,
            "switch_interval_ms": switch_interval_ms,
            "busy_work_ms": work_ms,
            "bpm": bpm,
            "bars": bars,
            "events": len(errors),
            "events_expected_at_least": expected,
            "error": summary_ms(errors) if errors else None,
            "abs_error": summary_ms([abs(e) for e in errors]) if errors else None,
            "late_jobs": status["late"],
            "probe_late_writes": probe.late_writes,
            "probe_xruns": probe.xruns,
            "daemon_warnings": [line for line in daemon.lines if " WARNING " in line or " ERROR " in line][
                -10:
            ],
        }
    finally:
        client.close()
        probe.close()
        daemon.stop()
        os.unlink(preset)


def late_jobs(env: dict[str, str], servername: str, *, bpm: float, bars: int) -> dict[str, Any]:
    """Late-job count of the `transpose` preset at `bpm` over `bars` bars of 8th notes."""
    daemon = _start(["--preset", "transpose", "--clock", "midi"], env)
    probe = JackProbe("mbprobe", ("bridge",), servername=servername)
    client = OscClient(daemon.osc_port)
    try:
        origin, frames_per_beat = _play_through_bridge(probe, bpm, bars)
        status = _status(client)
        answered_bars = {
            int((frame - origin) // (4 * frames_per_beat))
            for frame, data in probe.received["bridge"]
            if data[0] == 0x90 and data[2] > 0
        }
        return {
            "bpm": bpm,
            "bars_played": bars,
            "bars_answered": len(answered_bars),
            "late_jobs": status["late"],
            "last_job_latency_ms": round(float(status["latency_ms"]), 3),
        }
    finally:
        client.close()
        probe.close()
        daemon.stop()


def wait_idle(seconds: float) -> None:
    """A pause between scenarios (lets the previous daemon's JACK client go)."""
    time.sleep(seconds)


def jack_midi_latency_reference(env: dict[str, str], messages: int = 300) -> dict[str, Any]:
    """Round trip through the bridge (thru) measured by JACK's own jack_midi_latency_test, if present."""
    import re
    import shutil
    import subprocess

    if shutil.which("jack_midi_latency_test") is None:
        return {"skipped": "jack_midi_latency_test not found"}
    daemon = _start(["--preset", "default", "--clock", "internal"], env)
    try:
        result = subprocess.run(
            ["jack_midi_latency_test", "-s", str(messages), "-t", "10", "musebridge:in", "musebridge:out"],
            env=env, capture_output=True, text=True, timeout=60,
        )
    finally:
        daemon.stop()
    found: dict[str, Any] = {"command": f"jack_midi_latency_test -s {messages} musebridge:in musebridge:out"}
    for key, label in (("average_ms", "Average latency"), ("lowest_ms", "Lowest latency"),
                       ("highest_ms", "Highest latency"), ("peak_jitter_ms", "Peak MIDI jitter"),
                       ("average_jitter_ms", "Average MIDI jitter")):
        match = re.search(rf"{label}: ([0-9.]+) ms", result.stdout)
        found[key] = float(match.group(1)) if match else None
    for key, label in (("sent", "Messages sent"), ("received", "Messages received")):
        match = re.search(rf"{label}: (\d+)", result.stdout)
        found[key] = int(match.group(1)) if match else None
    return found
