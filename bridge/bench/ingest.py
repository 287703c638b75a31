"""Ingestion benchmark (issue 14): MIDI files per second, the symusic reader against the old pretty_midi
path side by side in one run, and the peak memory of `musebridge data build` at two folder sizes.

    nice -n 10 python -m musebridge.bench.ingest --files 1000 --memory 1000 20000 --json out.json

The folder is made by a seeded generator in a temporary directory (never kept): `--distinct` different
files (1 to 6 tracks, drums, 100 to 1,200 notes, tempo and meter changes), copied round-robin up to the
size asked. Throughput is one process each, over the same files, alternating the two readers in
rounds so that load on a shared machine hits both alike; the ratio is the figure to quote. Memory:
each build runs in a fresh child process (`musebridge data build --jobs 2`), which reports its own
peak RSS and the largest of its parser processes'. The old path needs pretty_midi, which musebridge
itself no longer uses: it comes with the test extra (`pip install -e ".[test]"`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path


def generate_folder(folder: Path, files: int, distinct: int = 500, seed: int = 0) -> list[Path]:
    """`files` MIDI files in `folder`: `distinct` generated ones, then copies of them (round-robin)."""
    from musebridge.smf.writer import OutNote, new_midi

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for index in range(min(files, distinct)):
        tpb = rng.choice([96, 192, 384, 480, 960])
        bars = rng.randint(8, 64)
        tempos = [(0, rng.uniform(60, 180))] + [(rng.randint(1, bars * 4) * tpb, rng.uniform(60, 180))]
        meters = [(0, 4, 4)] + ([(rng.randint(1, bars // 2) * 4 * tpb, 3, 4)] if rng.random() < 0.3 else [])
        parts = []
        for track in range(rng.randint(1, 5)):
            channel, program = track, rng.randint(0, 127)
            notes, tick = [], 0
            while tick < bars * 4 * tpb and len(notes) < rng.randint(100, 240):
                length = rng.choice([tpb // 4, tpb // 2, tpb, 2 * tpb])
                pitch = rng.randint(36, 96)
                notes.append(OutNote(channel, pitch, rng.randint(30, 120), tick, tick + length))
                if rng.random() < 0.3:  # a chord note
                    notes.append(
                        OutNote(channel, min(127, pitch + 4), rng.randint(30, 120), tick, tick + length)
                    )
                tick += rng.choice([tpb // 4, tpb // 2, tpb])
            parts.append((f"track {track}", channel, program, notes))
        drums = [
            OutNote(9, rng.choice([36, 38, 42]), 100, i * tpb // 2, i * tpb // 2 + 10)
            for i in range(bars * 8)
        ]
        parts.append(("drums", 9, 0, drums))
        path = folder / f"song{index:05d}.mid"
        new_midi(path, tpb, tempos, meters, parts)
        made.append(path)
    for index in range(len(made), files):
        path = folder / f"song{index:05d}.mid"
        shutil.copyfile(made[index % len(made)], path)
        made.append(path)
    return made


def pretty_midi_tune(path: Path):
    """The old dataset path (before issue 14), kept here as the reference: pretty_midi reads the file,
    times go through its tempo map back to ticks, drums dropped, everything else merged."""
    import pretty_midi

    from musebridge.core.music import Meter
    from musebridge.models.data.tunes import Tune, make_notes, regular_bars

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        midi = pretty_midi.PrettyMIDI(str(path))
    resolution = float(midi.resolution)

    def beats(seconds: float) -> float:
        return midi.time_to_tick(seconds) / resolution

    rows = []
    for instrument in midi.instruments:
        if instrument.is_drum:
            continue
        for note in instrument.notes:
            start = beats(note.start)
            rows.append((note.pitch, max(1, min(127, note.velocity)), start, beats(note.end) - start))
    notes = make_notes(rows)
    changes = []
    for signature in midi.time_signature_changes:
        try:
            changes.append((beats(signature.time), Meter(signature.numerator, signature.denominator)))
        except ValueError:
            continue
    total = float((notes["start"] + notes["duration"]).max()) if notes.size else 0.0
    _times, tempi = midi.get_tempo_changes()
    return Tune(
        source_id=path.name,
        collection="bench",
        tempo_bpm=float(tempi[0]) if len(tempi) else None,
        notes=notes,
        bars=regular_bars(total, changes),
    )


def throughput(files: list[Path], rounds: int = 3) -> dict:
    """Files per second of each reader over `files`, in alternating rounds (median of the rounds)."""
    from musebridge.models.data.midi_files import parse_midi_file

    readers = {
        "symusic": lambda path: parse_midi_file(path, "bench", path.name),
        "pretty_midi": pretty_midi_tune,
    }
    rates: dict[str, list[float]] = {name: [] for name in readers}
    notes: dict[str, int] = {}
    for _round in range(rounds):
        for name, read in readers.items():
            began = time.perf_counter()
            count = sum(int(read(path).notes.size) for path in files)
            rates[name].append(len(files) / (time.perf_counter() - began))
            notes[name] = count
    result = {
        name: {"files_per_s": statistics.median(values), "rounds": values, "notes": notes[name]}
        for name, values in rates.items()
    }
    result["ratio"] = result["symusic"]["files_per_s"] / result["pretty_midi"]["files_per_s"]
    return result


_CHILD = """
import json, resource, sys, time
from pathlib import Path
from musebridge.models.data.build import build_dataset, plan_sources
folder, cache = Path(sys.argv[1]), Path(sys.argv[2])
sources = plan_sources({}, midi_dirs=[("bench", folder)])
report = build_dataset(sources, cache, jobs=int(sys.argv[3]), progress=False)
print(json.dumps({"files": report.files, "tunes": report.tunes, "notes": report.notes,
  "failed": len(report.failed_files), "seconds": report.seconds, "files_per_s": report.files_per_second,
  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
  "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def build_memory(folder: Path, jobs: int = 2) -> dict:
    """A full build of `folder` in a fresh child process: its figures and peak RSS (MB)."""
    with tempfile.TemporaryDirectory(prefix="mb-ingest-cache-") as cache:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(folder), cache, str(jobs)],
            capture_output=True,
            text=True,
            check=True,
        )
        first = json.loads(done.stdout.strip().splitlines()[-1])
        again = subprocess.run(
            [sys.executable, "-c", _CHILD, str(folder), cache, str(jobs)],
            capture_output=True,
            text=True,
            check=True,
        )
        first["second_build_seconds"] = json.loads(again.stdout.strip().splitlines()[-1])["seconds"]
        first["dataset_mb"] = (Path(cache) / "dataset.npz").stat().st_size / 2**20
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m musebridge.bench.ingest", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--files", type=int, default=1000, help="files for the side-by-side throughput")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", type=int, nargs="*", default=[1000, 20000], help="folder sizes to build")
    parser.add_argument("--distinct", type=int, default=500, help="distinct generated files")
    parser.add_argument("--jobs", type=int, default=2, help="parser processes of the builds")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    try:
        import pretty_midi  # noqa: F401 - the old path this benchmark compares with
    except ImportError:
        parser.error('the old path needs pretty_midi: pip install -e ".[test]" (or pip install pretty_midi)')
    results: dict = {
        "command": "python -m musebridge.bench.ingest " + " ".join(argv or sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="mb-ingest-") as scratch:
        largest = max([args.files, *args.memory])
        began = time.perf_counter()
        every = generate_folder(Path(scratch) / "all", largest, args.distinct)
        print(
            f"generated {largest} files ({args.distinct} distinct) in {time.perf_counter() - began:.0f} s",
            flush=True,
        )
        sample = every[: args.files]
        results["throughput"] = throughput(sample, args.rounds)
        t = results["throughput"]
        print(
            f"throughput over {len(sample)} files, one process each (median of {args.rounds} rounds): "
            f"symusic {t['symusic']['files_per_s']:.0f} files/s, "
            f"pretty_midi {t['pretty_midi']['files_per_s']:.1f} files/s: {t['ratio']:.1f}x",
            flush=True,
        )
        results["builds"] = {}
        for size in args.memory:
            folder = Path(scratch) / f"n{size}"
            folder.mkdir()
            for path in every[:size]:
                os.link(path, folder / path.name)
            figures = build_memory(folder, args.jobs)
            results["builds"][str(size)] = figures
            print(
                f"build of {size} files (--jobs {args.jobs}): {figures['files_per_s']:.0f} files/s, "
                f"{figures['seconds']:.1f} s, {figures['failed']} failed, "
                f"peak RSS {figures['peak_rss_mb']:.0f} MB "
                f"(largest parser process {figures['worker_peak_rss_mb']:.0f} MB), dataset "
                f"{figures['dataset_mb']:.1f} MB; second build {figures['second_build_seconds']:.2f} s",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
