"""`musebridge bench --soak MINUTES`: the daemon for a long while under a scripted band (Linux, JACK).

A private `jackd -d dummy` runs `musebridge serve --clock midi` with two soak presets (written to a
temporary user preset folder). A probe client plays MIDI clock at 200 BPM and, on four tracks (MIDI
channels 1-4), 8th notes every bar:

- tracks 1 and 2: transfer with the `transpose` rule model, 1-bar phrases (each bar comes back on
  the next bar: the answered-bar count is exact);
- track 3: sample with the shipped MusicVAE (a new 2-bar phrase every phrase; a model child process);
- track 4: switched between thru and transfer (transpose) over OSC every 8 bars.
Every 32 bars the preset switches over OSC between `soak-a` and `soak-b` (other semitones, other
transpose). Every minute it prints the resident memory (RSS) of the daemon and of its child processes.
At the end the transport stops, and it reports: answered vs expected bars of the exact tracks,
late jobs and errors (/musebridge/status), and hanging notes (note-ons on the output with no
note-off once the transport stopped, and again after the daemon exited).

Expected bars: a bar b of track 1, 2 (or 4 while in transfer) whose previous bar was played in the
same mode and preset expects a transposed answer in bar b; track 4 in thru expects its input back in
the same bar. Bars next to a switch (preset, or track 4's mode) are not counted: a switch clears
the output on purpose.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from musebridge.bench.daemon import DaemonProcess, OscClient
from musebridge.bench.jack import JackProbe

BPM = 200.0
TICKS_PER_BAR = 96  # 4/4 at 24 ppqn
SCALE = (60, 62, 64, 65, 67, 69, 71, 72)
EXACT_TRACKS = (1, 2)
SWITCHING_TRACK = 4
PRESET_EVERY = 32  # bars
MODE_EVERY = 8  # bars

SOAK_PRESET = """\
name: {name}
description: "musebridge bench --soak: transpose on tracks 1, 2 and 4, MusicVAE samples on track 3"
clock: midi
meter: "4/4"
grid: {{steps: 4, per: beat}}
models: {{transfer: transpose, sample: musicvae}}
model_options:
  transpose: {{semitones: {semitones}}}
defaults: {{mode: transfer, phrase_bars: 1}}
tracks:
  3: {{mode: sample, phrase_bars: 2, temperature: {temperature}}}
  4: {{mode: thru, phrase_bars: 1}}
"""


def rss_mb(pid: int) -> float | None:
    """Resident memory of process `pid` in MB (Linux /proc), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def child_pids(pid: int) -> list[int]:
    """Every descendant of `pid` (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def growth_mb_per_hour(samples: list[tuple[float, float]], warmup_s: float = 120.0) -> float | None:
    """Least-squares slope of (seconds, MB) after `warmup_s`, in MB per hour (None: too few samples)."""
    points = [(t, mb) for t, mb in samples if t >= warmup_s] or samples
    if len(points) < 3:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_m = sum(m for _, m in points) / len(points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    slope = sum((t - mean_t) * (m - mean_m) for t, m in points) / var
    return slope * 3600.0


def hanging(events: list[tuple[int, tuple[int, ...]]]) -> int:
    """Note-ons without a note-off in `events` (per channel and key, counted)."""
    sounding: Counter[tuple[int, int]] = Counter()
    for _, data in events:
        if len(data) == 3 and data[0] & 0xF0 == 0x90 and data[2] > 0:
            sounding[(data[0] & 0x0F, data[1])] += 1
        elif len(data) == 3 and data[0] & 0xF0 in (0x80, 0x90):
            key = (data[0] & 0x0F, data[1])
            sounding[key] = max(0, sounding[key] - 1)
        elif len(data) == 3 and data[0] & 0xF0 == 0xB0 and data[1] == 123:
            for key in [k for k in sounding if k[0] == data[0] & 0x0F]:
                del sounding[key]
    return sum(sounding.values())


class _Plan:
    """What the script does in each bar: preset, track 4's mode, and what that makes expected."""

    def preset(self, bar: int) -> str:
        return "soak-a" if (bar // PRESET_EVERY) % 2 == 0 else "soak-b"

    def mode4(self, bar: int) -> str:
        return "thru" if (bar // MODE_EVERY) % 2 == 0 else "transfer"

    def expected(self, bar: int) -> dict[int, str]:
        """Track -> 'answer' (a transposed answer of bar-1) or 'echo' (the input of this bar)."""
        out: dict[int, str] = {}
        if bar < 2 or len({self.preset(bar), self.preset(bar - 1), self.preset(bar - 2)}) > 1:
            return out
        for track in EXACT_TRACKS:
            out[track] = "answer"
        mode, before = self.mode4(bar), self.mode4(bar - 1)
        if mode == before == "transfer":
            out[SWITCHING_TRACK] = "answer"
        elif mode == "thru" and before == "thru":
            out[SWITCHING_TRACK] = "echo"
        return out


def run_soak(env: dict[str, str], servername: str, minutes: float,
             say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the soak for `minutes` on the JACK server `servername` (env selects it); the figures."""
    folder = Path(tempfile.mkdtemp(prefix="musebridge-soak-"))
    (folder / "soak-a.yaml").write_text(SOAK_PRESET.format(name="soak-a", semitones=12, temperature=1.0))
    (folder / "soak-b.yaml").write_text(SOAK_PRESET.format(name="soak-b", semitones=7, temperature=0.8))
    env = dict(env, MUSEBRIDGE_PRESET_DIR=str(folder), OMP_NUM_THREADS="1")
    daemon = DaemonProcess(["--midi-backend", "jack", "--log-level", "warning", "--clock", "midi",
                            "--preset", "soak-a"], env=env).start(timeout=120.0)
    assert daemon.process is not None
    probe = JackProbe("mbsoak", ("bridge",), servername=servername)
    client = OscClient(daemon.osc_port)
    plan = _Plan()
    result: dict[str, Any] = {"minutes": minutes, "bpm": BPM, "tracks": 4}
    try:
        client.request("/musebridge/hello", client.port, reply="/musebridge/welcome")
        probe.connect(f"{probe.name}:out_bridge", "musebridge:in")
        probe.connect("musebridge:out", f"{probe.name}:in_bridge")
        frames_per_beat = probe.samplerate * 60.0 / BPM
        bar_frames = 4 * frames_per_beat
        bars = max(4, int(minutes * 60.0 / (4 * 60.0 / BPM)))
        origin = probe.frame_now() + int(0.3 * probe.samplerate)
        probe.send_at_frame("bridge", (0xFA,), origin - probe.period // 2)
        received: list[tuple[int, tuple[int, ...]]] = []
        rss: list[dict[str, Any]] = []
        started = time.monotonic()
        next_sample = 0.0
        for bar in range(bars + 2):
            probe.wait_until_frame(origin + round((bar - 1) * bar_frames), timeout=30.0)
            if bar < bars and bar > 0 and bar % PRESET_EVERY == 0:
                client.send("/musebridge/preset", plan.preset(bar))
            if bar < bars and bar > 0 and bar % MODE_EVERY == 0:
                client.send("/musebridge/mode", SWITCHING_TRACK, plan.mode4(bar))
            _schedule_bar(probe, origin, bar, frames_per_beat, play=bar < bars)
            while probe.received["bridge"]:
                received.append(probe.received["bridge"].popleft())
            elapsed = time.monotonic() - started
            if elapsed >= next_sample:
                next_sample += 60.0
                sample = _rss_sample(daemon.process.pid, elapsed)
                rss.append(sample)
                say(f"  {elapsed / 60.0:5.1f} min: RSS daemon {sample['daemon_mb']:.1f} MB, children "
                    f"{', '.join(f'{mb:.1f}' for mb in sample['children_mb']) or 'none'} MB")
        probe.send_at_frame("bridge", (0xFC,), origin + round((bars + 2) * bar_frames))
        probe.wait_until_frame(origin + round((bars + 4) * bar_frames), timeout=30.0)
        probe.wait_cycles(8)
        while probe.received["bridge"]:
            received.append(probe.received["bridge"].popleft())
        status = dict(zip(("mode", "clock", "tempo", "playing", "beat", "model", "queue", "late",
                           "latency_ms", "errors"),
                          client.request("/musebridge/status", reply="/musebridge/status"), strict=True))
        result["bars_played"] = bars
        result.update(_answered(received, origin, bar_frames, bars, plan))
        result["late_jobs"] = int(status["late"])
        result["errors"] = int(status["errors"])
        result["hanging_after_stop"] = hanging(received)
        result["rss"] = rss
        result["rss_growth_mb_per_hour"] = {
            "daemon": growth_mb_per_hour([(s["t_s"], s["daemon_mb"]) for s in rss]),
            "children": growth_mb_per_hour([(s["t_s"], sum(s["children_mb"])) for s in rss]),
        }
        result["error_lines"] = [line for line in daemon.lines if " ERROR " in line][-10:]
    finally:
        client.close()
        code = daemon.stop()
        probe.wait_cycles(8)
        tail = list(probe.received["bridge"])
        probe.close()
    result["exit_code"] = code
    result["hanging_after_exit"] = hanging(received + tail) if "bars_played" in result else None
    return result


def _schedule_bar(probe: JackProbe, origin: int, bar: int, frames_per_beat: float, play: bool) -> None:
    """MIDI clock for `bar` and, when `play`, 8th notes on channels 1-4 (each track its own line)."""
    tick = frames_per_beat / 24.0
    start = bar * TICKS_PER_BAR
    for index in range(start, start + TICKS_PER_BAR):
        probe.send_at_frame("bridge", (0xF8,), origin + round(index * tick))
    if not play:
        return
    for channel in range(4):
        for eighth in range(8):
            beat = bar * 4 + eighth * 0.5
            pitch = SCALE[(bar + eighth + channel) % len(SCALE)] - 12 * (channel % 2)
            probe.send_at_frame("bridge", (0x90 | channel, pitch, 90), origin + round(beat * frames_per_beat))
            probe.send_at_frame("bridge", (0x80 | channel, pitch, 0),
                                origin + round((beat + 0.25) * frames_per_beat))


def _answered(received: list[tuple[int, tuple[int, ...]]], origin: int, bar_frames: float, bars: int,
              plan: _Plan) -> dict[str, Any]:
    """Answered vs expected bars of the exact tracks (see the module doc)."""
    heard: set[tuple[int, int]] = set()  # (track, bar) with a note-on on the track's channel
    for frame, data in received:
        if len(data) == 3 and data[0] & 0xF0 == 0x90 and data[2] > 0:
            heard.add(((data[0] & 0x0F) + 1, int((frame - origin) // bar_frames)))
    expected = answered = 0
    for bar in range(bars):
        for track in plan.expected(bar):
            expected += 1
            answered += (track, bar) in heard
    return {"bars_expected": expected, "bars_answered": answered}


def _rss_sample(pid: int, elapsed: float) -> dict[str, Any]:
    children = [mb for mb in (rss_mb(child) for child in child_pids(pid)) if mb is not None]
    return {"t_s": round(elapsed, 1), "daemon_mb": rss_mb(pid) or 0.0, "children_mb": children}


def soak_env_ok() -> str | None:
    """Why the soak cannot run here (it needs Linux /proc), or None."""
    return None if os.path.isdir("/proc/self") else "the soak reads memory from /proc (Linux only)"
