"""`musebridge data build | info`: the cached symbolic dataset (music21 corpus and MIDI folders)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from musebridge.errors import UserError

CACHE_HELP = "cache folder (default $MUSEBRIDGE_DATA or ~/.cache/musebridge)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="build and inspect the training dataset")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    parser.set_defaults(handler=lambda _args: _help(parser))

    build = actions.add_parser(
        "build",
        help="parse the music21 corpus and/or MIDI folders into a cached dataset",
        description="Parse genre collections in parallel into <cache>/dataset.npz. Files that fail are "
        "counted and named in <cache>/build-failures.log; the build goes on. A second build reuses "
        "the cache: it parses only what changed, and does nothing when nothing did.",
    )
    build.add_argument("--genres", type=Path, help="genres YAML (default: the shipped genres.yaml)")
    build.add_argument(
        "--genre", action="append", metavar="NAME", help="build only this genre (repeatable; default all)"
    )
    build.add_argument(
        "--midi-dir",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="add a folder of .mid files as genre NAME (repeatable)",
    )
    build.add_argument(
        "--midi-csv",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="add the MIDI files listed in a CSV of path,genre rows (paths relative to the CSV; repeatable)",
    )
    build.add_argument("--jobs", type=int, help="parallel parser processes (default: all cores)")
    build.add_argument("--limit", type=int, help="parse only the first N files of each collection")
    build.add_argument("--cache", type=Path, help=CACHE_HELP)
    build.add_argument("--output", type=Path, help="dataset file (default <cache>/dataset.npz)")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(handler=run_build)

    info = actions.add_parser("info", help="tunes, notes and windows per genre and split")
    info.add_argument("--cache", type=Path, help=CACHE_HELP)
    info.add_argument("--dataset", type=Path, help="dataset file (default <cache>/dataset.npz)")
    info.add_argument("--json", action="store_true", help="print the table as JSON")
    info.set_defaults(handler=run_info)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_build(args: argparse.Namespace) -> int:
    from musebridge.models.data.build import build_dataset, default_cache_dir, plan_sources
    from musebridge.models.data.genres import load_genres, parse_midi_dir_option

    if args.jobs is not None and args.jobs < 1:
        raise UserError("--jobs must be >= 1")
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be >= 1")
    try:
        genres = load_genres(args.genres)
        extra = [parse_midi_dir_option(text) for text in args.midi_dir]
        sources = plan_sources(genres, args.genre, extra, args.limit, args.midi_csv)
    except ValueError as error:
        raise UserError(str(error)) from error
    if not sources:
        raise UserError("nothing to build: no files in the selected genres")
    cache = Path(args.cache or default_cache_dir()).expanduser()
    _check_folder(cache, "--cache")
    if args.output is not None:
        if args.output.is_dir():
            example = args.output / "dataset.npz"
            raise UserError(f"--output {args.output}: a folder; give a file name, e.g. {example}")
        _check_folder(args.output.parent, "--output")
    from musebridge.models.data.shards import EmptyDatasetError

    try:
        report = build_dataset(sources, cache, args.jobs, args.output, progress=not args.quiet)
    except EmptyDatasetError as error:
        log = cache / "build-failures.log"
        raise UserError(f"{error} (every selected file failed or held no notes; see {log})") from error
    failed = len(report.failed_files) + len(report.tune_failures)
    if report.up_to_date:
        print(
            f"up to date: nothing changed in {report.files} files since the last build -> "
            f"{report.dataset_path} ({report.tunes} tunes, {report.notes} notes; "
            f"{len(report.failed_files)} files failed)"
        )
        return 0
    print(
        f"{report.tunes} tunes, {report.notes} notes from {report.files} files "
        f"({report.files_from_cache} from cache) in {report.seconds:.1f} s -> {report.dataset_path}"
    )
    print(
        f"parsed {report.files_parsed} files in {report.parse_seconds:.1f} s "
        f"({report.files_per_second:.0f} files/s); {len(report.failed_files)} files failed"
    )
    if failed:
        print(
            f"{len(report.failed_files)} files and {len(report.tune_failures)} tunes failed to parse; "
            f"see {report.log_path}"
        )
    return 0


def _check_folder(folder: Path, option: str) -> None:
    """UserError unless `folder` is (or can be made) a writable folder: checked before any parsing."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{option} {folder}: a file, not a folder") from None
    except OSError as error:
        raise UserError(f"{option} {folder}: cannot create it ({error.strerror or error})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{option} {folder}: not writable")


def run_info(args: argparse.Namespace) -> int:
    from musebridge.models.data.build import default_cache_dir
    from musebridge.models.data.dataset import SPLITS, TuneDataset

    try:
        data = TuneDataset.load(args.dataset or (args.cache or default_cache_dir()))
    except ValueError as error:
        raise UserError(str(error)) from error
    table = data.summary((2, 4))
    if args.json:
        document = {"dataset": str(data.path), "genres": table, "meters": data.meter_counts()}
        print(json.dumps(document, indent=2))
        return 0
    print(f"{data.path}: {len(data)} tunes")
    width = max([14, *(len(g) + 2 for g in table)])
    header = f"{'genre':<{width}}{'split':<7}{'tunes':>8}{'notes':>10}{'2-bar':>9}{'4-bar':>9}"
    print(header)
    print("-" * len(header))
    for genre in sorted(table):
        for split in SPLITS:
            row = table[genre].get(split, {})
            print(
                f"{genre:<{width}}{split:<7}{row.get('tunes', 0):>8}{row.get('notes', 0):>10}"
                f"{row.get('windows_2bar', 0):>9}{row.get('windows_4bar', 0):>9}"
            )
    if data.out_of_domain:
        print(f"held out (out of domain, never trained on): {', '.join(data.out_of_domain)}")
    meters = ", ".join(f"{m} {n}" for m, n in list(data.meter_counts().items())[:8])
    print(f"complete bars by meter: {meters}")
    return 0
