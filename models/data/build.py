"""`musebridge data build`: parse corpus collections and MIDI folders in parallel into one cached dataset.

Every source file is parsed once into a per-file cache entry (cache/files/<key>.npz) keyed by its
path, mtime, size and PARSER_VERSION, so a second build only reloads and concatenates. A file that
fails to parse (or to finish within FILE_TIMEOUT_S) is cached as a failure, counted and named in
cache/build-failures.log, and never stops the build. The result is one .npz (see tunes.pack_tunes).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .corpus import corpus_files, parse_score_file, source_prefix
from .genres import GenreSpec
from .midi_files import READER_VERSION, midi_files, parse_midi_file
from .tunes import Tune, pack_tunes, read_meta, unpack_tunes

PARSER_VERSION = 1
FILE_TIMEOUT_S = 900
DATASET_NAME = "dataset.npz"
FAILURE_LOG_NAME = "build-failures.log"


def default_cache_dir() -> Path:
    """$MUSEBRIDGE_DATA, else ~/.cache/musebridge (never inside the package)."""
    configured = os.environ.get("MUSEBRIDGE_DATA")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "musebridge"


@dataclass(frozen=True)
class SourceFile:
    """One file to parse: which genre and collection it feeds, and the prefix of its tunes' source ids."""

    genre: str
    collection: str
    path: Path
    source: str
    kind: str  # "score" (music21) or "midi" (musebridge.smf)
    voice: str = "all"  # "all" parts merged, or the "top" part only (see GenreSpec)
    out_of_domain: bool = False  # the genre is held out of training and model selection

    def cache_key(self) -> str:
        stat = self.path.stat()
        text = f"{self.kind}|{self.path.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{self.collection}|"
        text += f"{self.source}|{PARSER_VERSION}"
        if self.kind == "midi":
            text += f"|reader {READER_VERSION}"  # MIDI files are read again when the reading rules change
        if self.voice != "all":  # merged-part entries keep their keys (and caches)
            text += f"|voice={self.voice}"
        return hashlib.sha1(text.encode("utf-8")).hexdigest()


def plan_sources(
    genres: dict[str, GenreSpec],
    selected: Sequence[str] | None = None,
    midi_dirs: Iterable[tuple[str, Path]] = (),
    limit: int | None = None,
) -> list[SourceFile]:
    """The files to parse: the selected genres of `genres` (all when none selected), plus the NAME=DIR
    MIDI folders (always). `limit` keeps the first N files of each collection / folder. ValueError for
    an unknown genre, collection or folder.
    """
    extra = list(midi_dirs)
    names = list(selected) if selected else list(genres)
    unknown = [n for n in names if n not in genres and n not in {g for g, _ in extra}]
    if unknown:
        raise ValueError(f"unknown genre(s) {', '.join(unknown)}; known: {', '.join(sorted(genres))}")
    plan: list[SourceFile] = []
    for name in names:
        spec = genres.get(name)
        if spec is None:
            continue
        for collection in spec.corpus:
            files = corpus_files(collection)[:limit]
            plan += [
                SourceFile(name, collection, p, source_prefix(p), "score", spec.voice, spec.out_of_domain)
                for p in files
            ]
        for folder in spec.midi_dirs:
            plan += _midi_sources(name, folder.name, folder, limit)
    for name, folder in extra:
        plan += _midi_sources(name, name, folder, limit)
    return plan


def _midi_sources(genre: str, collection: str, folder: Path, limit: int | None) -> list[SourceFile]:
    files = midi_files(folder)[:limit]
    return [
        SourceFile(genre, collection, p, f"{collection}/{p.relative_to(folder).as_posix()}", "midi")
        for p in files
    ]


def _on_timeout(_signum, _frame):
    raise TimeoutError(f"parsing took longer than {FILE_TIMEOUT_S} s")


def parse_source(source: SourceFile) -> tuple[list[Tune], list[str], str]:
    """(tunes, per-tune failures, file error or "") of one file; never raises for bad content."""
    try:
        if source.kind == "midi":
            return [parse_midi_file(source.path, source.collection, source.source)], [], ""
        tunes, failures = parse_score_file(source.path, source.collection, source.source, source.voice)
        return tunes, failures, ""
    except Exception as error:  # noqa: BLE001 - a bad file is logged, never fatal
        return [], [], f"{type(error).__name__}: {error}".splitlines()[0][:300]


def _cache_path(cache_dir: Path, source: SourceFile) -> Path:
    return cache_dir / "files" / f"{source.cache_key()}.npz"


def _parse_into_cache(job: tuple[SourceFile, str]) -> tuple[str, bool]:
    """Worker: parse one file unless its cache entry exists; returns (cache path, was cached)."""
    source, cache_file = job
    path = Path(cache_file)
    if path.exists():
        return cache_file, True
    use_alarm = hasattr(signal, "SIGALRM")
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, _on_timeout)
        signal.alarm(FILE_TIMEOUT_S)
    try:
        tunes, failures, error = parse_source(source)
    except TimeoutError as timeout:
        tunes, failures, error = [], [], str(timeout)
    finally:
        if use_alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    packed = pack_tunes(tunes, {"file": source.source, "error": error, "tune_failures": failures})
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(temporary, **packed)
    os.replace(temporary, path)
    return cache_file, False


@dataclass
class BuildReport:
    """What a build did; `failed_files` and `tune_failures` are also written to the failure log."""

    dataset_path: Path
    log_path: Path
    files: int = 0
    files_from_cache: int = 0
    failed_files: list[str] = field(default_factory=list)
    tune_failures: list[str] = field(default_factory=list)
    empty_tunes: int = 0
    tunes: int = 0
    notes: int = 0
    seconds: float = 0.0


def build_dataset(
    sources: Sequence[SourceFile],
    cache_dir: Path,
    jobs: int | None = None,
    output: Path | None = None,
    progress: bool = True,
) -> BuildReport:
    """Parse (or reuse) every source in parallel, then write the dataset .npz and the failure log."""
    began = time.perf_counter()
    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    output = Path(output) if output is not None else cache_dir / DATASET_NAME
    report = BuildReport(dataset_path=output, log_path=cache_dir / FAILURE_LOG_NAME, files=len(sources))
    jobs_list = [(s, str(_cache_path(cache_dir, s))) for s in sources]
    order = sorted(range(len(jobs_list)), key=lambda i: -sources[i].path.stat().st_size)  # big first
    results = _run_jobs([jobs_list[i] for i in order], jobs or os.cpu_count() or 1, progress)
    report.files_from_cache = sum(1 for _path, cached in results if cached)

    tunes: list[Tune] = []
    for source, cache_file in jobs_list:
        try:
            with np.load(cache_file, allow_pickle=False) as stored:
                packed = {name: stored[name] for name in stored.files}
            meta = read_meta(packed)
        except (OSError, ValueError, KeyError) as error:
            missing = not Path(cache_file).exists()
            reason = "the parser process died" if missing else f"bad cache entry: {error}"
            Path(cache_file).unlink(missing_ok=True)  # parsed again by the next build
            report.failed_files.append(f"{source.genre}\t{source.source}\t{reason}")
            continue
        if meta["error"]:
            report.failed_files.append(f"{source.genre}\t{meta['file']}\t{meta['error']}")
        report.tune_failures += [f"{source.genre}\t{line}" for line in meta["tune_failures"]]
        for tune in unpack_tunes(packed):
            if tune.notes.size == 0:
                report.empty_tunes += 1
            else:
                tunes.append(tune.with_genre(source.genre))
    report.tunes = len(tunes)
    report.notes = int(sum(t.notes.size for t in tunes))
    extra = {"parser_version": PARSER_VERSION, "files": len(sources)}
    extra["failed_files"] = len(report.failed_files)
    extra["out_of_domain"] = sorted({s.genre for s in sources if s.out_of_domain})
    extra["top_voice"] = sorted({s.genre for s in sources if s.voice == "top"})
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f"{output.stem}.tmp.npz")
    np.savez(temporary, **pack_tunes(tunes, extra))
    os.replace(temporary, output)
    _write_log(report)
    report.seconds = time.perf_counter() - began
    return report


def _run_jobs(
    jobs_list: list[tuple[SourceFile, str]], workers: int, progress: bool
) -> list[tuple[str, bool]]:
    """Run the parse jobs, in a process pool when workers > 1. If a parser process dies (a crash or
    the OOM killer) the pool breaks: the unfinished files are then parsed one process each, so only
    the guilty file is lost; it has no cache entry and build_dataset logs it as failed."""
    from tqdm import tqdm

    bar = tqdm(total=len(jobs_list), desc="parsing", unit="file", disable=not progress)
    results: list[tuple[str, bool]] = []
    if workers <= 1 or len(jobs_list) <= 1:
        for job in jobs_list:
            results.append(_parse_into_cache(job))
            bar.update()
        bar.close()
        return results
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    unfinished = []
    with ProcessPoolExecutor(min(workers, len(jobs_list)), mp_context=context) as pool:
        futures = {pool.submit(_parse_into_cache, job): job for job in jobs_list}
        for future in as_completed(futures):
            try:
                results.append(future.result())
                bar.update()
            except (BrokenProcessPool, OSError):
                unfinished.append(futures[future])
    running: list = []
    for job in unfinished:  # after a crash: one process per file, `workers` at a time
        if len(running) >= workers:
            running.pop(0).join()
            bar.update()
        process = context.Process(target=_parse_into_cache, args=(job,), daemon=True)
        process.start()
        running.append(process)
    for process in running:
        process.join()
        bar.update()
    results += [(cache_file, False) for _source, cache_file in unfinished if Path(cache_file).exists()]
    bar.close()
    return results


def _write_log(report: BuildReport) -> None:
    lines = [
        f"{len(report.failed_files)} of {report.files} files failed to parse",
        *report.failed_files,
        f"{len(report.tune_failures)} tunes inside files failed to convert",
        *report.tune_failures,
        f"{report.empty_tunes} tunes had no notes and were left out",
    ]
    report.log_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
