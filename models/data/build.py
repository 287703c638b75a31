"""`musebridge data build`: parse corpus collections and MIDI folders in parallel into one cached dataset.

Work is cut into shards: one per corpus file (music21 is slow, ~50 ms to seconds a file), one per
batch of up to MIDI_BATCH MIDI files of one folder (the C++ MIDI reader takes well under a
millisecond a file, so a batch keeps the process pool busy instead of waiting on messages). Shards
run in a process pool, and each becomes a cache entry (cache/files/<key>.npz) keyed by its files'
paths, mtimes, sizes and parser versions, so a second build parses only what changed. A file that
fails to parse (or takes longer than FILE_TIMEOUT_S) is recorded in its shard as a failure, counted,
named in cache/build-failures.log, and never stops the build. The dataset file is then streamed from
the shards (shards.write_dataset: memory stays flat however many files there are); a build whose
shards and output are unchanged since the last one does nothing (`BuildReport.up_to_date`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .corpus import corpus_files, parse_score_file, source_prefix
from .genres import GenreSpec, check_genre_name
from .midi_files import READER_VERSION, midi_files, parse_midi_file
from .shards import EmptyDatasetError, write_dataset
from .tunes import Tune, pack_tunes

PARSER_VERSION = 1
FILE_TIMEOUT_S = 900
MIDI_BATCH = 64  # MIDI files per shard
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
        """Changes when the file, its place in the dataset or the parser changes; a missing file has a
        key of its own (it is then recorded as a failure)."""
        try:
            stat = self.path.stat()
            state = f"{stat.st_mtime_ns}|{stat.st_size}"
        except OSError:
            state = "missing"
        text = f"{self.kind}|{self.path.resolve()}|{state}|{self.collection}|"
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
    midi_lists: Iterable[Path] = (),
) -> list[SourceFile]:
    """The files to parse: the selected genres of `genres` (all when none selected), plus the NAME=DIR
    MIDI folders and the (path, genre) CSV lists (always). `limit` keeps the first N files of each
    collection / folder / list. ValueError for an unknown genre, collection, folder or a bad list.
    """
    extra = list(midi_dirs)
    listed = [source for csv_path in midi_lists for source in midi_list_sources(csv_path, limit)]
    names = list(selected) if selected else list(genres)
    known_extra = {g for g, _ in extra} | {s.genre for s in listed}
    unknown = [n for n in names if n not in genres and n not in known_extra]
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
    return plan + listed


def _midi_sources(genre: str, collection: str, folder: Path, limit: int | None) -> list[SourceFile]:
    files = midi_files(folder)[:limit]
    return [
        SourceFile(genre, collection, p, f"{collection}/{p.relative_to(folder).as_posix()}", "midi")
        for p in files
    ]


def midi_list_sources(csv_path: Path, limit: int | None = None) -> list[SourceFile]:
    """MIDI files named in a CSV of (path, genre) rows, for collections not sorted into genre folders.

    A first row "path,genre" is a header. Relative paths are relative to the CSV's folder; the
    collection is the CSV's name, and a tune's source id is "<csv name>/<path as written>". A listed
    file that does not exist is kept in the plan and recorded as a failed file by the build.
    ValueError for an unreadable CSV, a row without two fields, or a bad genre name.
    """
    csv_path = Path(csv_path).expanduser()
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except OSError as error:
        raise ValueError(f"cannot read the MIDI list {csv_path}: {error.strerror or error}") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "genre"]:
        rows = rows[1:]
    sources = []
    counts: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise ValueError(f"{csv_path} row {number}: expected 'path,genre', got {','.join(row)!r}")
        written, genre = row[0].strip(), check_genre_name(row[1].strip())
        if limit is not None and counts.get(genre, 0) >= limit:
            continue
        counts[genre] = counts.get(genre, 0) + 1
        path = Path(written).expanduser()
        path = path if path.is_absolute() else csv_path.parent / path
        source = f"{csv_path.stem}/{Path(written).as_posix()}"
        sources.append(SourceFile(genre, csv_path.stem, path, source, "midi"))
    return sources


@dataclass(frozen=True)
class Shard:
    """Files parsed together into one cache entry (one corpus file, or a batch of MIDI files)."""

    sources: tuple[SourceFile, ...]
    cache_file: str

    @property
    def genre(self) -> str:
        return self.sources[0].genre


def plan_shards(sources: Sequence[SourceFile], cache_dir: Path, batch: int = MIDI_BATCH) -> list[Shard]:
    """Corpus files one a shard; MIDI files in batches of `batch` consecutive files of one genre and
    collection (so a changed file re-parses its batch only)."""
    shards: list[Shard] = []
    pending: list[SourceFile] = []

    def close() -> None:
        if pending:
            shards.append(_shard(pending, cache_dir))
            pending.clear()

    for source in sources:
        if source.kind != "midi":
            close()
            shards.append(_shard([source], cache_dir))
            continue
        if pending and (
            len(pending) >= batch
            or (pending[0].genre, pending[0].collection) != (source.genre, source.collection)
        ):
            close()
        pending.append(source)
    close()
    return shards


def _shard(sources: Sequence[SourceFile], cache_dir: Path) -> Shard:
    if len(sources) == 1:  # one file: its own key, so the per-file entries of earlier builds still count
        key = sources[0].cache_key()
    else:
        key = hashlib.sha1("\n".join(s.cache_key() for s in sources).encode("utf-8")).hexdigest()
    return Shard(tuple(sources), str(cache_dir / "files" / f"{key}.npz"))


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
        text = str(error).splitlines()[0][:300] if str(error) else ""
        if source.kind == "midi" and isinstance(error, ValueError):  # MidiFileError: the cause, in words
            return [], [], text or type(error).__name__
        return [], [], f"{type(error).__name__}: {text}"


def _parse_with_timeout(source: SourceFile) -> tuple[list[Tune], list[str], str]:
    use_alarm = hasattr(signal, "SIGALRM")
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, _on_timeout)
        signal.alarm(FILE_TIMEOUT_S)
    try:
        return parse_source(source)
    except TimeoutError as timeout:
        return [], [], str(timeout)
    finally:
        if use_alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)


def _parse_into_cache(shard: Shard) -> tuple[str, bool, int]:
    """Worker: parse a shard's files unless its cache entry exists; (cache path, was cached, files)."""
    path = Path(shard.cache_file)
    if path.exists():
        return shard.cache_file, True, len(shard.sources)
    tunes, failed, tune_failures = [], [], []
    for source in shard.sources:
        found, failures, error = _parse_with_timeout(source)
        tunes += found
        tune_failures += failures
        if error:
            failed.append([source.source, error])
    meta = {"files": [s.source for s in shard.sources], "failed": failed, "tune_failures": tune_failures}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(temporary, **pack_tunes(tunes, meta))
    os.replace(temporary, path)
    return shard.cache_file, False, len(shard.sources)


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
    parse_seconds: float = 0.0  # the parsing stage alone (pool start to the last shard)
    up_to_date: bool = False  # nothing changed since the last build: nothing was parsed or written

    @property
    def files_parsed(self) -> int:
        return self.files - self.files_from_cache

    @property
    def files_per_second(self) -> float:
        return self.files_parsed / self.parse_seconds if self.parse_seconds > 0 else 0.0


def _manifest_path(output: Path) -> Path:
    return output.with_name(f"{output.name}.build.json")


def _fingerprint(shards: Sequence[Shard], output: Path) -> str:
    text = "\n".join([str(output.resolve()), *(s.cache_file for s in shards)])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _unchanged(report: BuildReport, fingerprint: str) -> bool:
    """True (and the report filled from the last build) when the output is the one built last time
    from exactly these shards."""
    try:
        manifest = json.loads(_manifest_path(report.dataset_path).read_text(encoding="utf-8"))
        stat = report.dataset_path.stat()
    except (OSError, ValueError):
        return False
    if manifest.get("fingerprint") != fingerprint or manifest.get("output") != [
        stat.st_size,
        stat.st_mtime_ns,
    ]:
        return False
    for name in ("failed_files", "tune_failures", "empty_tunes", "tunes", "notes"):
        setattr(report, name, manifest[name])
    report.files_from_cache = report.files
    report.up_to_date = True
    return True


def build_dataset(
    sources: Sequence[SourceFile],
    cache_dir: Path,
    jobs: int | None = None,
    output: Path | None = None,
    progress: bool = True,
) -> BuildReport:
    """Parse (or reuse) every source in parallel, then stream the dataset .npz and write the failure log.

    Nothing is parsed or written when the shards and the output are those of the last build.
    """
    began = time.perf_counter()
    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    output = Path(output) if output is not None else cache_dir / DATASET_NAME
    report = BuildReport(dataset_path=output, log_path=cache_dir / FAILURE_LOG_NAME, files=len(sources))
    shards = plan_shards(sources, cache_dir)
    fingerprint = _fingerprint(shards, output)
    if _unchanged(report, fingerprint):
        report.seconds = time.perf_counter() - began
        return report
    parse_began = time.perf_counter()
    shards, cached_files = _run_shards(shards, jobs or os.cpu_count() or 1, progress)
    report.parse_seconds = time.perf_counter() - parse_began
    report.files_from_cache = cached_files

    usable: list[Shard] = []
    for shard in shards:
        if Path(shard.cache_file).exists():
            usable.append(shard)
        else:  # its parser process died: logged, and parsed again by the next build
            report.failed_files += [f"{s.genre}\t{s.source}\tthe parser process died" for s in shard.sources]

    def on_meta(index: int, meta: dict) -> None:
        genre = usable[index].genre
        failed = meta.get("failed", [])
        if meta.get("error"):  # an entry written by an earlier version: one file, one error
            failed = [[meta["file"], meta["error"]]]
        report.failed_files.extend(f"{genre}\t{name}\t{reason}" for name, reason in failed)
        extra["failed_files"] = len(report.failed_files)  # the dataset's metadata is written after this pass
        report.tune_failures.extend(f"{genre}\t{line}" for line in meta.get("tune_failures", []))

    extra = {"parser_version": PARSER_VERSION, "files": len(sources)}
    extra["out_of_domain"] = sorted({s.genre for s in sources if s.out_of_domain})
    extra["top_voice"] = sorted({s.genre for s in sources if s.voice == "top"})
    extra["failed_files"] = len(report.failed_files)
    try:
        counts = write_dataset([(s.genre, Path(s.cache_file)) for s in usable], output, extra, on_meta)
    except EmptyDatasetError:
        _write_log(report)  # the failures say why
        raise
    except (OSError, ValueError, KeyError) as error:  # a damaged cache entry: drop them, build again
        for shard in usable:
            _check_entry(Path(shard.cache_file))
        raise RuntimeError(f"a cache entry was unreadable ({error}); run the build again") from error
    report.tunes, report.notes, report.empty_tunes = counts.tunes, counts.notes, counts.empty_tunes
    _write_log(report)
    if not any("the parser process died" in line for line in report.failed_files):
        stat = output.stat()
        manifest = {
            "fingerprint": fingerprint,
            "output": [stat.st_size, stat.st_mtime_ns],
            **{
                k: getattr(report, k)
                for k in ("failed_files", "tune_failures", "empty_tunes", "tunes", "notes")
            },
        }
        _manifest_path(output).write_text(json.dumps(manifest), encoding="utf-8")
    report.seconds = time.perf_counter() - began
    return report


def _check_entry(path: Path) -> None:
    """Remove a cache entry that cannot be read (it is parsed again by the next build)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            for name in stored.files:
                stored[name]
    except (OSError, ValueError, KeyError, EOFError):
        path.unlink(missing_ok=True)


def _run_shards(shards: list[Shard], workers: int, progress: bool) -> tuple[list[Shard], int]:
    """Parse the shards, in a process pool when workers > 1 (biggest shards first). If a parser process
    dies (a crash or the OOM killer) the pool breaks: the files of the unfinished shards are then
    parsed one process each, so only the guilty file is lost (it has no cache entry; build_dataset logs
    it). Returns the shards to read (those unfinished split into one-file shards) and the number of
    files whose cache entry already existed."""
    from tqdm import tqdm

    bar = tqdm(total=sum(len(s.sources) for s in shards), desc="parsing", unit="file", disable=not progress)
    cached = 0
    if workers <= 1 or not shards:
        for shard in shards:
            _path, was_cached, count = _parse_into_cache(shard)
            cached += count if was_cached else 0
            bar.update(count)
        bar.close()
        return shards, cached
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    order = sorted(shards, key=_shard_size, reverse=True)
    unfinished: list[Shard] = []
    with ProcessPoolExecutor(min(workers, len(order)), mp_context=context) as pool:
        futures = {pool.submit(_parse_into_cache, shard): shard for shard in order}
        for future in as_completed(futures):
            try:
                _path, was_cached, count = future.result()
                cached += count if was_cached else 0
                bar.update(count)
            except (BrokenProcessPool, OSError):
                unfinished.append(futures[future])
    singles = {
        id(shard): [_shard([s], Path(shard.cache_file).parent.parent) for s in shard.sources]
        for shard in unfinished
    }
    running: list = []
    for single in (one for shard in unfinished for one in singles[id(shard)]):
        if len(running) >= workers:
            running.pop(0).join()
            bar.update()
        process = context.Process(target=_parse_into_cache, args=(single,), daemon=True)
        process.start()
        running.append(process)
    for process in running:
        process.join()
        bar.update()
    bar.close()
    out = []
    for shard in shards:
        out += singles.get(id(shard), [shard])
    return out, cached


def _shard_size(shard: Shard) -> int:
    size = 0
    for source in shard.sources:
        try:
            size += source.path.stat().st_size
        except OSError:
            pass
    return size


def _write_log(report: BuildReport) -> None:
    lines = [
        f"{len(report.failed_files)} of {report.files} files failed to parse",
        *report.failed_files,
        f"{len(report.tune_failures)} tunes inside files failed to convert",
        *report.tune_failures,
        f"{report.empty_tunes} tunes had no notes and were left out",
    ]
    report.log_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
