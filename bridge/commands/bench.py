"""`musebridge bench`: model inference latency, and the bridge's timing through real JACK ports."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure model latency and the bridge's timing through JACK",
        description="Per-model inference latency (p50/p99), then, through real JACK ports (a private "
        "jackd -d dummy is started when none runs): thru latency added over JACK's own loop, output "
        "timing error while a CPU-busy model runs (model in a thread vs a child process), and late jobs "
        "for the transpose preset at 120 and 200 BPM.",
    )
    parser.add_argument("--json", metavar="OUT", type=Path, default=None,
                        help="also write the results as JSON")
    parser.add_argument("--quick", action="store_true", help="fewer runs and bars (about a minute)")
    parser.add_argument("--runs", type=_positive_int, default=None,
                        help="inference runs per model, and notes of the untimed-output test "
                        "(default: 200 and 300, quick: 50 and 100)")
    parser.add_argument("--models", metavar="NAME", nargs="+", default=None,
                        help="models to time (default: every registered one)")
    parser.add_argument("--no-jack", action="store_true", help="skip the JACK measurements")
    parser.add_argument("--busy-ms", type=float, default=600.0,
                        help="CPU time the busy model burns per job in the load test (default: 600)")
    parser.add_argument("--tracks", action="store_true",
                        help="only the many-tracks table: 1, 4 and 16 tracks in transfer, continue and "
                        "interpolate modes at 120 and 200 BPM (answered phrases, late jobs, job latency, "
                        "model cost per track); it also runs as part of the whole bench")
    parser.add_argument("--no-tracks", action="store_true", help="skip the many-tracks table")
    parser.add_argument("--soak", metavar="MINUTES", type=float, default=None,
                        help="instead: run the daemon that long on a private JACK server at 200 BPM "
                        "under scripted players, mode and preset switches; print memory over time, "
                        "answered vs expected bars, late jobs, errors and hanging notes")
    parser.set_defaults(handler=run)


def _say(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.soak is not None:
        return _soak(args)
    if args.tracks:
        return _tracks_only(args)
    from musebridge.bench.models import interpolation_latency, model_latencies, untimed_send_precision

    results: dict[str, Any] = {
        "command": "musebridge bench" + (" --quick" if args.quick else ""),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {_cpu_count()} CPU, load average {_load()}",
    }
    runs = args.runs or (50 if args.quick else 200)
    _say(f"model inference latency ({runs} runs, in this process):")
    latencies = model_latencies(args.models, runs=runs)
    if args.models is None or "musicvae" in args.models:
        latencies.append(interpolation_latency(runs))
    for entry in latencies:
        if entry.stats is None:
            _say(f"  {entry.model:12s} skipped: {entry.skipped}")
        else:
            _say(f"  {entry.model:12s} {entry.mode:12s} p50 {entry.stats['p50_ms']:8.3f} ms  "
                 f"p99 {entry.stats['p99_ms']:8.3f} ms  ({entry.request})")
    results["models"] = [entry.as_dict() for entry in latencies]
    _say("untimed output path (rtmidi backends: sleep, then spin), in-process, 10 ms apart:")
    precision = []
    for spin_s in (0.0, 0.0005, 0.002):
        entry = untimed_send_precision(args.runs or (100 if args.quick else 300), spin_s)
        precision.append(entry)
        lateness = entry["lateness"]
        _say(f"  spin {entry['spin_ms']:.1f} ms: lateness p50 {lateness['p50_ms']:.3f} ms, "
             f"p99 {lateness['p99_ms']:.3f} ms")
    results["untimed_output"] = precision
    results["jack"] = {"skipped": "--no-jack"} if args.no_jack else _jack_benchmarks(args)
    if not args.no_tracks:
        from musebridge.bench.tracks import many_tracks

        results["many_tracks"] = many_tracks(bars=4 if args.quick else 8, say=_say)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        _say(f"wrote {args.json}")
    return 0


def _load() -> str:
    import os

    try:
        return " ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 1


def _jack_benchmarks(args: argparse.Namespace) -> dict[str, Any]:
    from musebridge.bench import jack as bench_jack
    from musebridge.bench import scenarios as bench_scenarios

    reason = bench_jack.jack_unavailable_reason()
    if reason:
        _say(f"JACK benchmarks skipped: {reason}")
        return {"skipped": reason}
    out: dict[str, Any] = {}
    with bench_jack.private_jackd() as server:
        out["server"] = f"jackd -n {server.name} -d dummy -r {bench_jack.SAMPLE_RATE} -p {bench_jack.PERIOD}"
        _say(f"JACK: {out['server']}")
        env = server.env

        thru = bench_scenarios.thru_latency(env, server.name, events=100 if args.quick else 300)
        out["thru_latency"] = thru
        if thru["added"]:
            _say(f"thru latency added over JACK's loop: p50 {thru['added']['p50_ms']:.3f} ms, "
                 f"p99 {thru['added']['p99_ms']:.3f} ms ({thru['matched']}/{thru['events']} pairs; "
                 f"period {thru['period_ms']} ms)")

        reference = bench_scenarios.jack_midi_latency_reference(env, 100 if args.quick else 300)
        out["jack_midi_latency_test"] = reference
        if reference.get("average_ms") is not None:
            _say(f"outside reference, {reference['command']}: round trip "
                 f"average {reference['average_ms']} ms, lowest {reference['lowest_ms']} ms, "
                 f"highest {reference['highest_ms']} ms "
                 f"({reference['received']}/{reference['sent']} received)")

        bars = 4 if args.quick else 10
        load = []
        for isolation, switch_ms in (("thread", 5.0), ("thread", 0.5), ("process", 0.5)):
            entry = bench_scenarios.timing_under_load(
                env, server.name, isolation=isolation, switch_interval_ms=switch_ms, work_ms=args.busy_ms,
                bars=bars,
            )
            load.append(entry)
            if entry["error"]:
                error = entry["abs_error"]
                _say(f"output timing error, busy model in a {isolation} (GIL switch {switch_ms:g} ms): "
                     f"|error| p50 {error['p50_ms']:.3f} ms, p99 {error['p99_ms']:.3f} ms, "
                     f"max {error['max_ms']:.3f} ms ({entry['events']} events, {entry['probe_xruns']} xruns)")
            else:
                _say(f"output timing, busy model in a {isolation}: no output received")
        out["timing_under_load"] = load

        late = []
        for bpm in (120.0, 200.0):
            entry = bench_scenarios.late_jobs(env, server.name, bpm=bpm, bars=4 if args.quick else 8)
            late.append(entry)
            _say(f"transpose at {bpm:g} BPM: {entry['late_jobs']} late jobs, "
                 f"{entry['bars_answered']} of {entry['bars_played']} bars answered")
        out["late_jobs"] = late
    return out




def _soak(args: argparse.Namespace) -> int:
    """`bench --soak MINUTES` (musebridge.bench.soak); exit 1 when a note hangs or the daemon failed."""
    from musebridge.bench import jack as bench_jack
    from musebridge.bench.soak import run_soak, soak_env_ok
    from musebridge.errors import UserError

    if not args.soak > 0:
        raise UserError(f"--soak takes minutes > 0, got {args.soak:g}")
    reason = bench_jack.jack_unavailable_reason() or soak_env_ok()
    if reason:
        raise UserError(f"the soak needs JACK: {reason}")
    with bench_jack.private_jackd() as server:
        _say(f"soak: {args.soak:g} min at 200 BPM on jackd -n {server.name} -d dummy")
        result = run_soak(server.env, server.name, args.soak, say=_say)
    result["command"] = f"musebridge bench --soak {args.soak:g}"
    result["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    result["machine"] = f"{platform.machine()}, {_cpu_count()} CPU, load average {_load()}"
    growth = result["rss_growth_mb_per_hour"]
    _say(f"bars answered {result['bars_answered']} of {result['bars_expected']} expected "
         f"({result['bars_played']} bars played); late jobs {result['late_jobs']}; errors {result['errors']}")
    _say(f"hanging notes: {result['hanging_after_stop']} after the stop, {result['hanging_after_exit']} "
         f"after the daemon exited (exit code {result['exit_code']})")
    _say("RSS growth per hour: daemon " + _mb(growth["daemon"]) + ", children " + _mb(growth["children"]))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        _say(f"wrote {args.json}")
    return 0 if result["hanging_after_stop"] == 0 and result["exit_code"] == 0 else 1


def _mb(value: float | None) -> str:
    return "n/a (too short)" if value is None else f"{value:+.1f} MB"


def _tracks_only(args: argparse.Namespace) -> int:
    """`bench --tracks`: the many-tracks table alone (musebridge.bench.tracks)."""
    from musebridge.bench.tracks import many_tracks

    results: dict[str, Any] = {
        "command": "musebridge bench --tracks" + (" --quick" if args.quick else ""),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {_cpu_count()} CPU, load average {_load()}",
    }
    _say(f"machine: {results['machine']}")
    results["many_tracks"] = many_tracks(bars=4 if args.quick else 8, say=_say)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        _say(f"wrote {args.json}")
    return 0
