"""Training throughput of the shared trainer: steps/s of 1 vs N torchrun processes, same global batch.

    python -m musebridge.bench.training --families vae wavenet transfer --steps 60 --rounds 2 --nproc 1 2

Each run is `python -m torch.distributed.run --standalone --nproc-per-node N -m musebridge train ...` on a
generated dataset (two genres of seeded 8-bar melodies, 4/4) in a temporary folder, one torch thread per
process; steps/s comes from the run's train_log.json (between its first and last log rows, so start-up,
data loading and the final checkpoint are left out). Process counts alternate within each round, so a
change in the machine's load falls on both. Prints a table and, with --json, writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FAMILIES = ("vae", "wavenet", "transfer")


def make_dataset(path: Path, tunes: int = 600, seed: int = 0) -> Path:
    """A dataset .npz of `tunes` 8-bar 4/4 melodies (eighths and quarters, a random walk on a scale), half
    genre "jig", half genre "reel" (the second a fifth higher and denser)."""
    import numpy as np

    from musebridge.models.data.tunes import Tune, make_bars, make_notes, pack_tunes

    rng = np.random.default_rng(seed)
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    out = []
    for index in range(tunes):
        reel = index % 2 == 1
        root, degree, beat, rows = 55 + (7 if reel else 0), int(rng.integers(0, 7)), 0.0, []
        while beat < 32.0:
            length = 0.5 if reel or rng.random() < 0.5 else 1.0
            degree = int(np.clip(degree + rng.integers(-2, 3), 0, 13))
            rows.append((root + 12 * (degree // 7) + int(scale[degree % 7]), 80, beat, length))
            beat += length
        out.append(Tune(source_id=f"bench/{index}", collection="bench", genre="reel" if reel else "jig",
                        notes=make_notes(rows), bars=make_bars([(b * 4.0, 4.0, 4, 4) for b in range(8)])))
    np.savez(path, **pack_tunes(out, {}))
    return path


def command(family: str, nproc: int, dataset: Path, folder: Path, steps: int) -> list[str]:
    """The torchrun line of one run (global batch: vae 64, wavenet 32, transfer 8)."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
              "-m", "musebridge", "train"]
    if family == "vae":
        return launch + ["vae", "--dataset", str(dataset), "--genre", "jig", "--genre", "reel",
                         "--steps", str(steps), "--batch-size", "64", "--log-every", "10",
                         "--valid-every", str(steps), "--checkpoint-every", str(steps), "--threads", "1",
                         "--device", "cpu", "--quiet", "--out-dir", str(folder / "run"),
                         "--export", str(folder / "vae.pt")]
    if family == "wavenet":
        return launch + ["continue", "--model", "wavenet", "--data", str(dataset), "--steps", str(steps),
                         "--batch-size", "32", "--window-bars", "4", "--threads", "1", "--device", "cpu",
                         "--no-progress", "--out-dir", str(folder / "run")]
    return launch + ["transfer", "--pair", "jig", "reel", "--dataset", str(dataset), "--skip-classifier",
                     "--steps", str(steps), "--checkpoint-every", str(steps), "--batch-size", "8",
                     "--threads", "1", "--device", "cpu", "--log-every", "10", "-o", str(folder / "out"),
                     "--run-dir", str(folder / "run")]


def steps_per_second(log_path: Path) -> float:
    """(last step - first step) / (seconds between them) from a train_log.json."""
    history = json.loads(log_path.read_text())["history"]
    if len(history) < 2:
        raise ValueError(f"{log_path}: fewer than two log rows")
    first, last = history[0], history[-1]
    return (last["step"] - first["step"]) / (last["seconds"] - first["seconds"])


def measure(families: list[str], nprocs: list[int], steps: int, rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "steps": steps,
                               "rounds": rounds, "load_average_before": os.getloadavg()[0], "families": {}}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="bench-training-") as scratch:
        dataset = make_dataset(Path(scratch) / "dataset.npz")
        for family in families:
            rates: dict[int, list[float]] = {n: [] for n in nprocs}
            for round_index in range(rounds):
                order = nprocs if round_index % 2 == 0 else list(reversed(nprocs))
                for nproc in order:
                    folder = Path(scratch) / f"{family}-{nproc}-{round_index}"
                    line = command(family, nproc, dataset, folder, steps)
                    done = subprocess.run(line, capture_output=True, text=True, env=env, timeout=1800)
                    if done.returncode:
                        raise RuntimeError(f"{family} x{nproc} failed: {done.stderr[-1500:]}")
                    rates[nproc].append(steps_per_second(folder / "run" / "train_log.json"))
                    print(f"  {family:9s} {nproc} process(es) round {round_index + 1}: "
                          f"{rates[nproc][-1]:.3f} steps/s", flush=True)
            medians = {n: statistics.median(r) for n, r in rates.items()}
            results["families"][family] = {
                "steps_per_s": {str(n): r for n, r in rates.items()},
                "median_steps_per_s": {str(n): m for n, m in medians.items()},
                "ratio_to_1": {str(n): m / medians[nprocs[0]] for n, m in medians.items()},
                "command": " ".join(command(family, nprocs[-1], Path("DATASET"), Path("OUT"), steps)[1:]),
            }
    results["load_average_after"] = os.getloadavg()[0]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m musebridge.bench.training",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--nproc", nargs="+", type=int, default=[1, 2],
                        help="process counts (the first is the reference)")
    parser.add_argument("--steps", type=int, default=60, help="training steps per run (logged every 10)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per family and process count")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    results = measure(args.families, args.nproc, args.steps, args.rounds)
    print(f"steps/s, median of {args.rounds} round(s) (load average {results['load_average_before']:.1f} "
          f"before, {results['load_average_after']:.1f} after):")
    for family, entry in results["families"].items():
        figures = ", ".join(f"{n} process(es) {m:.3f}" for n, m in entry["median_steps_per_s"].items())
        ratios = ", ".join(f"x{n}: {r:.2f}" for n, r in entry["ratio_to_1"].items())
        print(f"  {family:9s} {figures}; ratio to 1 process {ratios}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
