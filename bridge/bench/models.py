"""Benchmark pieces that need no JACK: per-model inference latency, and a CPU-busy benchmark model.

`busy` (registered in musebridge.registry) burns `work_ms` of pure-Python CPU, holding the GIL as a
CPU-bound model would, then transposes like `transpose`: the load under which output timing is
measured (and which decides whether CPU inference needs its own process).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from musebridge import registry
from musebridge.core.model_protocol import ModelRequest
from musebridge.core.music import Meter, Note, Phrase
from musebridge.errors import UserError


class BusyModel:
    """Burns `work_ms` of CPU in Python (GIL held), then answers the phrase moved by `semitones`."""

    name = "busy"
    modes = frozenset({"transfer", "continue", "sample", "thru"})

    def __init__(self, work_ms: float = 200.0, semitones: int = 12) -> None:
        if not 0.0 <= float(work_ms) <= 60_000.0:
            raise ValueError(f"busy work_ms must be 0..60000, got {work_ms!r}")
        self.work_s = float(work_ms) / 1000.0
        self.semitones = int(semitones)

    def generate(self, request: ModelRequest) -> Phrase:
        end = time.perf_counter() + self.work_s
        spins = 0
        while time.perf_counter() < end:
            spins += sum(i * i for i in range(200)) & 1  # pure-Python work: holds the GIL
        from musebridge.core.rule_models import fit_to_bars

        return fit_to_bars(request.phrase, request.bars).transposed(self.semitones)


def create_busy_model(device: str, options: Mapping[str, Any]) -> BusyModel:
    """Registry factory of `busy` (options: work_ms, semitones)."""
    try:
        return BusyModel(**dict(options))
    except (TypeError, ValueError) as error:
        raise UserError(f"model 'busy': {error}") from error


def percentile(values: Sequence[float], q: float) -> float:
    """q-th percentile (0..100), linear between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / max / mean in milliseconds, and the count."""
    return {
        "p50_ms": round(percentile(values_s, 50) * 1000.0, 4),
        "p99_ms": round(percentile(values_s, 99) * 1000.0, 4),
        "max_ms": round(max(values_s) * 1000.0, 4),
        "mean_ms": round(statistics.fmean(values_s) * 1000.0, 4),
        "n": len(values_s),
    }


def bench_phrase(bars: int = 4, meter: Meter | None = None) -> Phrase:
    """A deterministic phrase: eighth notes walking a C major scale, `bars` bars of 4/4."""
    meter = meter or Meter(4, 4)
    scale = (60, 62, 64, 65, 67, 69, 71, 72)
    steps = int(bars * meter.beats_per_bar * 2)
    notes = tuple(Note(scale[i % len(scale)], 90, i * 0.5, 0.45) for i in range(steps))
    return Phrase(notes, bars=bars, meter=meter)


@dataclass(frozen=True, slots=True)
class ModelLatency:
    model: str
    mode: str
    stats: dict[str, float] | None
    skipped: str | None = None
    request: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "mode": self.mode, "request": self.request, **(self.stats or {}),
                "skipped": self.skipped}


# What one job asks of each mode in the bench, as the issues state their speed goals:
# transfer one 4-bar phrase; continue a 2-bar answer to a 4-bar call; interpolate (and sample) a
# 2-bar phrase; an 8-step 2-bar interpolation is timed apart (interpolation_latency).
ANSWER_BARS = {"transfer": 4, "continue": 2, "interpolate": 2, "sample": 2, "thru": 4}
BENCH_GENRE = "celtic"  # a genre every shipped model knows (transfer target, continuation conditioning)


def _timed(call: Any, runs: int, warmup: int = 5) -> dict[str, float]:
    for _ in range(min(warmup, runs)):
        call()
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return summary_ms(timings)


def model_latencies(
    names: Sequence[str] | None = None,
    *,
    runs: int = 200,
    device: str = "cpu",
    skip: Sequence[str] = ("busy",),
) -> list[ModelLatency]:
    """Inference latency of each registered model on a 4-bar phrase (models that cannot load: skipped)."""
    phrase = bench_phrase(4)
    results = []
    for name in names or registry.names():
        if name in skip:
            continue
        try:
            model = registry.create(name, device=device)
        except Exception as error:  # e.g. a missing checkpoint: say so, keep benchmarking the rest
            results.append(ModelLatency(name, "", None, f"{type(error).__name__}: {error}"))
            continue
        served = ("transfer", "continue", "interpolate", "sample")
        mode = next((m for m in served if m in model.modes), "thru")
        bars = ANSWER_BARS[mode]
        clip = bench_phrase(bars)
        request = ModelRequest(mode, phrase, bars=bars, genre=BENCH_GENRE, clip_a=clip,
                               clip_b=clip.transposed(7), position=0.5)
        stats = _timed(lambda: model.generate(request), runs)  # noqa: B023 (called at once)
        results.append(ModelLatency(name, mode, stats, request=f"{bars}-bar answer to a 4-bar phrase"))
    return results


def interpolation_latency(
    runs: int = 200, *, steps: int = 8, bars: int = 2, device: str = "cpu"
) -> ModelLatency:
    """MusicVAE: one `steps`-point interpolation between two `bars`-bar clips (one batched decode)."""
    try:
        model = registry.create("musicvae", device=device)
    except Exception as error:
        return ModelLatency("musicvae", "interpolate", None, f"{type(error).__name__}: {error}")
    clip_a, clip_b = bench_phrase(bars), bench_phrase(bars).transposed(7)
    positions = [(i + 1) / (steps + 1) for i in range(steps)]
    stats = _timed(lambda: model.interpolate_phrases(clip_a, clip_b, positions, bars), runs)
    return ModelLatency("musicvae", "interpolate", stats, request=f"{steps}-step {bars}-bar interpolation")


def untimed_send_precision(
    events: int = 200, spin_s: float = 0.0005, spacing_s: float = 0.01
) -> dict[str, Any]:
    """The rtmidi-style path in-process: OutputScheduler sleeping then spinning `spin_s` before each
    event, into an output that stamps perf_counter at send. Lateness = stamp - scheduled time."""
    import threading

    from musebridge.core.actions import ScheduleNotes, TempoChanged
    from musebridge.core.tempo import TempoMap
    from musebridge.daemon.scheduler import OutputScheduler

    stamps: list[float] = []
    done = threading.Event()

    class StampingOutput:
        def send(self, data: Sequence[int]) -> None:
            stamps.append(time.perf_counter())
            if len(stamps) >= 2 * events:
                done.set()

    scheduler = OutputScheduler(StampingOutput(), spin_s=spin_s)
    bpm = 60.0 / (2 * spacing_s)  # one beat = two events (on, off)
    start = time.perf_counter() + 0.05
    scheduler.apply(TempoChanged(TempoMap(start, 0.0, bpm)))
    notes = tuple(Note(60 + i % 24, 100, float(i), 0.5) for i in range(events))
    scheduler.apply(ScheduleNotes(0, 0, notes, replace_from=0.0))
    scheduler.start()
    done.wait(timeout=events * spacing_s * 2 + 5.0)
    scheduler.stop()
    expected = [start + i * spacing_s for i in range(2 * events)]
    lateness = [stamp - due for stamp, due in zip(stamps, expected, strict=False)]
    return {"spin_ms": spin_s * 1000.0, "events": len(lateness), "lateness": summary_ms(lateness)}
