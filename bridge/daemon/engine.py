"""The engine: runs model jobs off the realtime threads and posts the results back.

Each model name gets a lane: a bounded pending list and a worker thread, so a slow model never delays
another model's jobs. A lane runs its jobs through a runner:

- `ThreadRunner` calls the model in the worker thread (GPU work, and torch ops that release the GIL);
- `ProcessRunner` calls it in a child process, so pure-Python CPU work never holds the GIL that the
  output scheduler needs. A child that dies during a job is reported as an error result and started
  again for the next one; one that dies while idle is noticed by its lane's idle check (every
  IDLE_CHECK_S), reported through `on_fault` and restarted, its models loaded again, before a job
  needs it.

A busy model never blocks input: `submit` only appends. No track's job is ever dropped for another
track's: `max_pending` bounds the jobs each track has waiting in a lane, and only when a track has
that many waiting is its own oldest superseded (reported and counted). The conductor bounds the
number of tracks (MAX_TRACKS), so a lane holds at most MAX_TRACKS * max_pending jobs.

Batching: a lane's worker takes every job waiting (up to MAX_BATCH) and runs them as one batch,
through the runner's `run_batch` (one round trip to the model's child process, and one forward pass
when the model has `generate_batch`, see bridge/core/model_protocol.py). Jobs due at the same bar line
are submitted together (`submit_many`), so they meet in one batch. When a batch fails, its jobs run
again one by one, so that one bad request gets its own error. A model that raises yields an error
result; the worker goes on. Every result carries its latency and its batch's size.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from musebridge.core.actions import Job
from musebridge.core.model_protocol import ModelRequest, PhraseModel, generate_many
from musebridge.core.music import Phrase
from musebridge.errors import UserError

log = logging.getLogger(__name__)

SUPERSEDED = "superseded by a newer job of the same track"
MAX_BATCH = 64  # most jobs one model runs in one batch
# The model child's BLAS runs one thread (as its torch ops do): a batch of 16 WaveNet answers took
# 348 ms with OpenBLAS's own threads on a loaded 2-core host, 42 ms with one (issue 11). A value the
# user set in the environment is kept.
CHILD_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
IDLE_CHECK_S = 0.5  # how often an idle lane asks its runner whether it is still well (check())


@dataclass(frozen=True, slots=True)
class JobResult:
    """The outcome of one job: a phrase, or an error text. Times are seconds on the engine's clock."""

    job: Job
    phrase: Phrase | None
    error: str | None
    submitted_at: float
    finished_at: float
    compute_s: float
    late: bool = False
    batch: int = 1  # jobs run together with this one (compute_s is the whole batch's)

    @property
    def latency_s(self) -> float:
        """Seconds from submit to result."""
        return self.finished_at - self.submitted_at


@dataclass(frozen=True, slots=True)
class EngineStats:
    submitted: int
    completed: int
    errors: int
    superseded: int
    late: int
    pending: int
    busy: bool


class Runner(Protocol):
    """Runs one request on a named model and returns its phrase (raises on failure)."""

    def run(self, model: str, request: ModelRequest) -> Phrase: ...

    def run_batch(self, model: str, requests: Sequence[ModelRequest]) -> list[Phrase]: ...

    def close(self) -> None: ...


class ThreadRunner:
    """Calls the model in the engine's worker thread; `resolve` maps a name to a model."""

    def __init__(self, resolve: Callable[[str], PhraseModel]) -> None:
        self._resolve = resolve

    def run(self, model: str, request: ModelRequest) -> Phrase:
        return self._resolve(model).generate(request)

    def run_batch(self, model: str, requests: Sequence[ModelRequest]) -> list[Phrase]:
        return generate_many(self._resolve(model), requests)

    def load(self, model: str) -> None:
        """Build `model` now (errors propagate)."""
        self._resolve(model)

    def close(self) -> None:
        pass


ModelMaker = Callable[[str, str, Mapping[str, Any]], PhraseModel]  # (name, device, options)


def create_registry_model(name: str, device: str, options: Mapping[str, Any]) -> PhraseModel:
    """Default model maker of a ProcessRunner's child: the registry (module level, so it pickles)."""
    from musebridge import registry

    return registry.create(name, device=device, options=options)


def _child_main(connection: Any, make_model: ModelMaker, device: str) -> None:
    """Loop of the child process: (model, options, request) in, ("ok", phrase) or ("error", text) out.

    A request of None only builds the model (load at start-up) and answers ("ok", None).
    Ctrl-C in a terminal reaches the whole process group: the child ignores it and is stopped by the
    parent's shutdown (None, or the pipe closing), so a Ctrl-C prints no traceback from here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    models: dict[tuple[str, tuple[tuple[str, Any], ...]], PhraseModel] = {}
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        model_name, options, request = message
        try:
            key = (model_name, tuple(sorted(options.items())))
            model = models.get(key)
            if model is None:
                model = models[key] = make_model(model_name, device, options)
            if isinstance(request, list):  # a batch: one answer with every phrase
                connection.send(("ok", generate_many(model, request)))
            else:
                connection.send(("ok", None if request is None else model.generate(request)))
        except Exception as error:  # reported to the parent; the child goes on
            connection.send(("error", describe_error(error)))


def describe_error(error: BaseException) -> str:
    """A failure as one line for logs and /musebridge/error: a UserError (a missing checkpoint, an
    option out of range) is already written for the user; anything else is named by its type."""
    return str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"


class ChildProcessDied(RuntimeError):
    """The model's child process ended while running a job (it is restarted for the next one)."""


class ProcessRunner:
    """Runs models in one child process (spawned, so no thread state is forked).

    options_for(name) gives a model's options at each job (read in the parent: presets may change).
    """

    def __init__(
        self,
        make_model: ModelMaker = create_registry_model,
        *,
        device: str = "cpu",
        options_for: Callable[[str], Mapping[str, Any]] | None = None,
    ) -> None:
        self._make_model = make_model
        self._device = device
        self._options_for = options_for or (lambda name: {})
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._connection: Any = None
        self._lock = threading.Lock()  # one job at a time through the pipe, whichever lane asks
        self._loaded: set[str] = set()  # models built in the child (loaded again after a restart)

    def start(self) -> None:
        """Start the child now (else on the first job): spawning costs a fraction of a second."""
        if self._process is not None and self._process.is_alive():
            return
        parent_end, child_end = self._context.Pipe()
        self._process = self._context.Process(
            target=_child_main, args=(child_end, self._make_model, self._device), daemon=True,
            name="musebridge-model",
        )
        added = {k: v for k, v in CHILD_THREAD_ENV.items() if k not in os.environ}
        os.environ.update(added)  # the spawned child reads its environment at start
        try:
            self._process.start()
        finally:
            for key in added:
                os.environ.pop(key, None)
        child_end.close()
        self._connection = parent_end

    def run(self, model: str, request: ModelRequest) -> Phrase:
        with self._lock:
            return self._run_locked(model, request)

    def run_batch(self, model: str, requests: Sequence[ModelRequest]) -> list[Phrase]:
        """Every request in one round trip to the child (one forward pass if the model batches)."""
        with self._lock:
            return self._run_locked(model, list(requests))  # type: ignore[return-value]

    def load(self, model: str) -> None:
        """Start the child and build `model` in it now; raises (RuntimeError) if it cannot load."""
        with self._lock:
            self._run_locked(model, None)

    def _run_locked(self, model: str, request: ModelRequest | list[ModelRequest] | None) -> Phrase:
        self.start()
        try:
            self._connection.send((model, dict(self._options_for(model)), request))
            status, payload = self._connection.recv()
        except (EOFError, OSError, BrokenPipeError) as error:
            code = None
            if self._process is not None:
                self._process.join(timeout=1.0)
                code = self._process.exitcode
            self._discard()
            raise ChildProcessDied(f"model process died (exit code {code})") from error
        if status == "error":
            raise RuntimeError(payload)
        self._loaded.add(model)
        return payload

    def check(self) -> str | None:
        """Idle check: a child that died while no job ran is restarted now, with the models it had
        loaded, so the next job does not pay for it. What happened (for the log and the clients),
        or None when the child is well or was never started."""
        with self._lock:
            process = self._process
            if process is None or process.is_alive():
                return None
            code = process.exitcode
            self._discard()
            models = sorted(self._loaded)
            self._loaded.clear()
            died = f"model process died while idle (exit code {code})"
            try:
                self.start()
                for model in models:
                    self._run_locked(model, None)
            except Exception as error:
                return f"{died}; restarting it failed: {error}"
            return f"{died}; restarted" + (f" with {', '.join(models)} loaded" if models else "")

    def _discard(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._process is not None:
            self._process.join(timeout=1.0)
            if self._process.is_alive():
                self._process.kill()
        self._process = None
        self._connection = None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.send(None)
                except (OSError, BrokenPipeError):
                    pass
            self._discard()


@dataclass(slots=True)
class _Pending:
    job: Job
    submitted_at: float
    deadline_time: float | None


class _Lane:
    """One model's queue and worker thread (so a slow model never delays another model's jobs)."""

    def __init__(self, name: str, runner: Runner, owns_runner: bool) -> None:
        self.name = name
        self.runner = runner
        self.owns_runner = owns_runner
        self.pending: deque[_Pending] = deque()
        self.busy = False
        self.thread: threading.Thread | None = None


class Engine:
    """Runs jobs off the realtime threads: one worker thread (a lane) per model name.

    runner: a Runner shared by every lane (ThreadRunner), or a factory model name -> Runner (one
        ProcessRunner per model, say); factory-made runners are closed on stop.
    on_result(JobResult) is called from the worker threads.
    on_fault(model, reason): a runner fault found while idle (a model process that died and was
        restarted), from the worker threads; idle_check_s: how often an idle lane checks its runner.
    clock: seconds (time.perf_counter by default; a fake in tests).
    max_pending: jobs each track may have waiting per model (not counting those running).
    """

    def __init__(
        self,
        runner: Runner | Callable[[str], Runner],
        on_result: Callable[[JobResult], None],
        *,
        max_pending: int = 4,
        clock: Callable[[], float] = time.perf_counter,
        on_fault: Callable[[str, str], None] | None = None,
        idle_check_s: float = IDLE_CHECK_S,
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        is_runner = hasattr(runner, "run") and not isinstance(runner, type)
        self._shared_runner: Runner | None = runner if is_runner else None  # type: ignore[assignment]
        self._make_runner = None if self._shared_runner is not None else runner
        self._on_result = on_result
        self._on_fault = on_fault
        self._idle_check_s = idle_check_s
        self._max_pending = max_pending
        self._clock = clock
        self._lanes: dict[str, _Lane] = {}
        self._wake = threading.Condition()
        self._started = False
        self._stopping = False
        self._submitted = self._completed = self._errors = self._superseded = self._late = 0

    def start(self) -> None:
        """Accept work (lanes and their threads are made on a model's first job)."""
        with self._wake:
            self._started = True
            self._stopping = False
            for lane in self._lanes.values():
                if lane.thread is None:
                    self._start_lane(lane)

    def submit(self, job: Job, *, deadline_time: float | None = None) -> None:
        """Queue a job (never blocks). deadline_time: clock time the result is due (late if after)."""
        self.submit_many([(job, deadline_time)])

    def submit_many(self, jobs: Sequence[tuple[Job, float | None]]) -> None:
        """Queue (job, deadline_time) pairs at once (never blocks): jobs due at the same bar line
        wait together, so each model runs them as one batch."""
        now = self._clock()
        dropped: list[tuple[_Pending, Job]] = []
        with self._wake:
            if self._stopping:
                return
            for job, deadline_time in jobs:
                self._submitted += 1
                lane = self._lane(job.model)
                same_track = [p for p in lane.pending if p.job.track == job.track]
                if len(same_track) >= self._max_pending:  # only the track's own oldest job goes
                    lane.pending.remove(same_track[0])
                    self._superseded += 1
                    dropped.append((same_track[0], job))
                lane.pending.append(_Pending(job, now, deadline_time))
            self._wake.notify_all()
        for old, job in dropped:
            log.info("job %d (track %d) superseded by job %d", old.job.job_id, old.job.track, job.job_id)
            self._post(JobResult(old.job, None, SUPERSEDED, old.submitted_at, now, 0.0))

    def prepare(self, models: Sequence[str]) -> None:
        """Make the lanes of `models` now and load each model in its runner (in its child process,
        for a ProcessRunner), so that start-up, not the first bar, pays for it and reports a model
        that cannot load. Errors propagate."""
        with self._wake:
            lanes = [self._lane(model) for model in models]
        for lane in lanes:
            load = getattr(lane.runner, "load", None)
            if callable(load):
                load(lane.name)

    def _lane(self, model: str) -> _Lane:
        """The lane of `model` (lock held), created with its thread on first use."""
        lane = self._lanes.get(model)
        if lane is None:
            if self._shared_runner is not None:
                lane = _Lane(model, self._shared_runner, owns_runner=False)
            else:
                assert self._make_runner is not None
                lane = _Lane(model, self._make_runner(model), owns_runner=True)
            self._lanes[model] = lane
            if self._started:
                self._start_lane(lane)
        return lane

    def _start_lane(self, lane: _Lane) -> None:
        lane.thread = threading.Thread(target=self._work, args=(lane,), name=f"musebridge-model-{lane.name}",
                                       daemon=True)
        lane.thread.start()

    def stats(self) -> EngineStats:
        with self._wake:
            return EngineStats(
                self._submitted, self._completed, self._errors, self._superseded, self._late,
                sum(len(lane.pending) for lane in self._lanes.values()),
                any(lane.busy for lane in self._lanes.values()),
            )

    @property
    def queue_depth(self) -> int:
        with self._wake:
            return sum(len(lane.pending) + lane.busy for lane in self._lanes.values())

    def cancel_pending(self) -> list[Job]:
        """Drop every job not yet started (e.g. on shutdown); returns them."""
        with self._wake:
            dropped = [p.job for lane in self._lanes.values() for p in lane.pending]
            for lane in self._lanes.values():
                lane.pending.clear()
        return dropped

    def stop(self, timeout: float = 2.0) -> None:
        """Stop after the running jobs (pending jobs are dropped); closes the runners."""
        with self._wake:
            self._stopping = True
            for lane in self._lanes.values():
                lane.pending.clear()
            self._wake.notify_all()
            lanes = list(self._lanes.values())
        deadline = time.monotonic() + timeout
        for lane in lanes:
            if lane.thread is not None:
                lane.thread.join(max(0.0, deadline - time.monotonic()))
            if lane.owns_runner:
                lane.runner.close()
        if self._shared_runner is not None:
            self._shared_runner.close()

    def _work(self, lane: _Lane) -> None:
        while True:
            with self._wake:
                if not lane.pending and not self._stopping:
                    self._wake.wait(self._idle_check_s)
                if self._stopping:
                    return
                items = [lane.pending.popleft() for _ in range(min(MAX_BATCH, len(lane.pending)))]
                lane.busy = bool(items)
            if not items:
                self._check_idle(lane)
                continue
            try:
                if len(items) == 1:
                    self._run_one(lane.runner, items[0])
                else:
                    self._run_batch(lane.runner, items)
            finally:
                with self._wake:
                    lane.busy = False

    def _run_batch(self, runner: Runner, items: list[_Pending]) -> None:
        """Run `items` (one model) as one batch; when it fails, one by one (each gets its own error)."""
        model = items[0].job.model
        started = self._clock()
        try:
            phrases = runner.run_batch(model, [item.job.request for item in items])
            if len(phrases) != len(items) or not all(isinstance(p, Phrase) for p in phrases):
                raise TypeError(f"model {model!r} answered a batch of {len(items)} with {len(phrases)} items")
        except Exception as exc:
            log.info("a batch of %d jobs on model %r failed (%s): running them one by one", len(items),
                     model, exc)
            for item in items:
                self._run_one(runner, item)
            return
        finished = self._clock()
        for item, phrase in zip(items, phrases, strict=True):
            late = item.deadline_time is not None and finished > item.deadline_time
            with self._wake:
                self._completed += 1
                self._late += late
            self._post(JobResult(item.job, phrase, None, item.submitted_at, finished,
                                 finished - started, late, batch=len(items)))

    def _check_idle(self, lane: _Lane) -> None:
        """Ask an idle lane's runner whether it is well (ProcessRunner.check); report what it found."""
        check = getattr(lane.runner, "check", None)
        if not callable(check):
            return
        try:
            found = check()
        except Exception as error:  # a failing check must not kill the worker
            found = f"checking the model failed: {error}"
        if not found:
            return
        log.warning("model %r: %s", lane.name, found)
        if self._on_fault is not None:
            try:
                self._on_fault(lane.name, found)
            except Exception:
                log.exception("reporting a fault of model %r failed", lane.name)

    def _run_one(self, runner: Runner, item: _Pending) -> None:
        started = self._clock()
        phrase: Phrase | None = None
        error: str | None = None
        try:
            phrase = runner.run(item.job.model, item.job.request)
            if not isinstance(phrase, Phrase):
                raise TypeError(f"model {item.job.model!r} returned {type(phrase).__name__}, not a Phrase")
        except Exception as exc:  # a crashing model is a result, not a dead worker
            phrase = None
            error = describe_error(exc)
            log.warning("job %d on model %r failed: %s", item.job.job_id, item.job.model, error)
            log.debug("%s", traceback.format_exc())
        finished = self._clock()
        late = item.deadline_time is not None and finished > item.deadline_time
        with self._wake:
            self._completed += 1
            self._errors += error is not None
            self._late += late
        self._post(JobResult(item.job, phrase, error, item.submitted_at, finished, finished - started, late))

    def _post(self, result: JobResult) -> None:
        try:
            self._on_result(result)
        except Exception:  # the receiver's problem must not kill the worker
            log.exception("posting the result of job %d failed", result.job.job_id)
