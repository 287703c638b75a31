"""Many tracks at once (`musebridge bench --tracks`): 1, 4 and 16 tracks in transfer, continue and
interpolate modes at 120 and 200 BPM, through a whole `musebridge serve` in this process.

Each run starts a Server (no MIDI ports, the internal clock at the tempo, OSC on a free port, the
preset of the mode: genre-transfer, call-and-response, interpolate, so the shipped neural models run
in their child processes as in use), and a scripted player per track (OSC track ids 101.., output over
OSC). The player's messages go on the daemon's inbox as its OSC server puts them, timestamped when
due, so the daemon sees exactly what a device would send, less the UDP hop. Per bar a track plays
four notes:

- transfer: 1-bar phrases, each answered on the next bar;
- continue: a 1-bar call every other bar, /musebridge/end_call at its end, a 1-bar answer;
- interpolate: clips A and B sent first (/musebridge/clip), the position moved each 2-bar phrase.

Measured per run: phrases asked (jobs), answered (played on their bar or later), late (on a later
bar, counted by the conductor), superseded and failed jobs, job latency (submit to result; p50/p99),
and the model's cost per job (its batch's compute time / the batch's size, mean). The cost per track
ratio is that mean at 16 tracks over the mean at 1 track of the same mode and tempo.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from musebridge.bench.models import summary_ms

PRESETS = {"transfer": "genre-transfer", "continue": "call-and-response", "interpolate": "interpolate"}
FIRST_TRACK = 101
SENDER = ("127.0.0.1", 1)  # the scripted players' address (no reply is read)
CLIP_A = [60, 0.0, 1.0, 100, 62, 1.0, 1.0, 90, 64, 2.0, 1.0, 80, 65, 3.0, 1.0, 70,
          67, 4.0, 2.0, 100, 65, 6.0, 1.0, 90, 64, 7.0, 1.0, 80]
CLIP_B = [72, 0.0, 0.5, 100, 71, 0.5, 0.5, 90, 69, 1.0, 1.0, 80, 67, 2.0, 2.0, 70,
          64, 4.0, 1.0, 100, 62, 5.0, 1.0, 90, 60, 6.0, 2.0, 80]
BAR_NOTES = ((0.0, 60), (1.0, 64), (2.0, 67), (3.0, 65))  # beat in the bar, pitch; half a beat long


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _player_events(mode: str, track: int, bars: int, offset: int) -> list[tuple[float, str, tuple]]:
    """(beat, address, args) the player of `track` sends over `bars` bars from bar 1."""
    events: list[tuple[float, str, tuple]] = []
    pitch_shift = offset % 12
    for bar in range(1, bars + 1):
        if mode == "continue" and bar % 2 == 0:
            continue  # the answer's bar: the player listens
        base = bar * 4.0
        for beat, pitch in BAR_NOTES:
            on, off = base + beat, base + beat + 0.5
            events.append((on, "/musebridge/note_on", (track, pitch + pitch_shift, 100, on)))
            events.append((off, "/musebridge/note_off", (track, pitch + pitch_shift, off)))
        if mode == "continue":
            events.append((base + 3.6, "/musebridge/end_call", (track,)))
        if mode == "interpolate" and bar % 2 == 1:
            events.append((base, "/musebridge/position", (track, (bar % 5) / 4.0)))
    return sorted(events, key=lambda e: e[0])


def many_tracks_run(mode: str, tracks: int, bpm: float, bars: int) -> dict[str, Any]:
    """One run (see the module doc); the figures as a dict."""
    from musebridge.daemon.server import Server, ServerConfig

    server = Server(ServerConfig(preset=PRESETS[mode], midi_backend="none", osc_port=_free_port(),
                                 clock="internal", tempo=bpm, mode=mode, echo="off"))
    results: list[Any] = []
    lock = threading.Lock()
    on_result = server._on_result

    def record(result: Any) -> None:
        with lock:
            results.append(result)
        on_result(result)

    server._on_result = record  # type: ignore[method-assign]
    server.start()
    try:
        conductor, clock = server.conductor, server.clock
        ids = [FIRST_TRACK + k for k in range(tracks)]

        def send(address: str, *args: Any) -> None:
            server.inbox.put(("osc", address, tuple(args), SENDER, clock()))

        for track in ids:
            send("/musebridge/mode", track, mode)
            if mode == "transfer":
                send("/musebridge/bars", track, 1)
                send("/musebridge/genre", track, "celtic")
            elif mode == "continue":
                send("/musebridge/bars", track, 1)
            else:
                send("/musebridge/clip", track, "a", 8.0, *CLIP_A)
                send("/musebridge/clip", track, "b", 8.0, *CLIP_B)
        tempo = conductor.tempo_map
        now_beat = tempo.beat_at(clock())
        start_bar = int(now_beat // 4.0) + 2  # the players start on a bar line ahead
        events = []
        for offset, track in enumerate(ids):
            for beat, address, args in _player_events(mode, track, bars, offset):
                shift = (start_bar - 1) * 4.0
                if address in ("/musebridge/note_on", "/musebridge/note_off"):
                    args = (*args[:-1], args[-1] + shift)
                events.append((beat + shift, address, args))
        events.sort(key=lambda e: e[0])
        for beat, address, args in events:
            _sleep_until(clock, tempo.time_at(beat))
            send(address, *args)
        end_beat = (start_bar + bars + 1) * 4.0 + 0.5  # the last answers have played
        _sleep_until(clock, tempo.time_at(end_beat))
        stats = server.engine.stats() if server.engine is not None else None
        with lock:
            done = list(results)
        states = [conductor.track_state(t) for t in ids]
    finally:
        server.stop()
    jobs = [r for r in done if r.job.track in set(ids)]
    ok = [r for r in jobs if r.error is None]
    cost = [r.compute_s / max(1, r.batch) for r in ok]
    return {
        "mode": mode,
        "tracks": tracks,
        "bpm": bpm,
        "bars": bars,
        "model": server.preset.model_for(mode) if server.preset is not None else "",
        "jobs": len(jobs),
        "answered": sum(s.answered for s in states),
        "late": sum(s.late for s in states),
        "superseded": stats.superseded if stats is not None else 0,
        "errors": len(jobs) - len(ok),
        "latency": summary_ms([r.latency_s for r in ok]) if ok else None,
        "cost_per_job_ms": round(1000.0 * sum(cost) / len(cost), 3) if cost else None,
        "largest_batch": max((r.batch for r in ok), default=0),
    }


def _sleep_until(clock: Callable[[], float], when: float) -> None:
    while True:
        left = when - clock()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def many_tracks(
    modes: Sequence[str] = ("transfer", "continue", "interpolate"),
    counts: Sequence[int] = (1, 4, 16),
    bpms: Sequence[float] = (120.0, 200.0),
    bars: int = 8,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every run of the table, then the cost per track ratio (16 vs 1) per mode and tempo."""
    runs = []
    say(f"many tracks ({bars} bars each; answered/jobs, late, superseded, errors, job latency, "
        "model cost per job):")
    for mode in modes:
        for bpm in bpms:
            for count in counts:
                entry = many_tracks_run(mode, count, bpm, bars)
                runs.append(entry)
                latency = entry["latency"] or {}
                say(f"  {mode:11s} {bpm:5.0f} BPM {count:2d} tracks: answered {entry['answered']:3d}/"
                    f"{entry['jobs']:3d}, late {entry['late']:2d}, superseded {entry['superseded']}, "
                    f"errors {entry['errors']}, latency p50 {latency.get('p50_ms', float('nan')):7.1f} ms "
                    f"p99 {latency.get('p99_ms', float('nan')):7.1f} ms, cost/job "
                    f"{entry['cost_per_job_ms']} ms (largest batch {entry['largest_batch']})")
    ratios = []
    for mode in modes:
        for bpm in bpms:
            by_count = {r["tracks"]: r for r in runs if r["mode"] == mode and r["bpm"] == bpm}
            low, high = by_count.get(min(counts)), by_count.get(max(counts))
            if low and high and low["cost_per_job_ms"] and high["cost_per_job_ms"]:
                ratio = round(high["cost_per_job_ms"] / low["cost_per_job_ms"], 2)
                ratios.append({"mode": mode, "bpm": bpm, "ratio": ratio})
                say(f"  cost per track, {max(counts)} vs {min(counts)} tracks, {mode} at {bpm:.0f} BPM: "
                    f"{ratio:.2f}x")
    return {"runs": runs, "cost_ratio": ratios}
