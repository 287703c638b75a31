"""The engine: results with latency, deadlines, superseding when full, crash paths (thread and process)."""

from __future__ import annotations

import os
import queue
import threading

import pytest

from musebridge.core.actions import Job
from musebridge.core.model_protocol import ModelRequest
from musebridge.core.music import Note, Phrase
from musebridge.daemon.engine import SUPERSEDED, Engine, JobResult, ProcessRunner, ThreadRunner

PHRASE = Phrase((Note(60, 100, 0.0, 1.0), Note(64, 90, 1.0, 1.0)), bars=1)


def make_job(job_id: int, track: int = 0, model: str = "up", pitch: int = 60) -> Job:
    phrase = PHRASE if pitch == 60 else Phrase((Note(pitch, 100, 0.0, 1.0),), bars=1)
    return Job(job_id, track, model, ModelRequest("transfer", phrase, 1), deadline_beat=4.0, land_beat=4.0)


class UpModel:
    """Transposes up an octave; can be held on a gate to simulate a busy model."""

    name = "up"
    modes = frozenset({"transfer"})

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.started = threading.Event()

    def generate(self, request: ModelRequest) -> Phrase:
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(5.0)
        return request.phrase.transposed(12)


class BatchUpModel(UpModel):
    """UpModel with a batch entry point that records each batch's size; refuses one pitch."""

    def __init__(self, gate: threading.Event | None = None, refuse_pitch: int = -1) -> None:
        super().__init__(gate)
        self.batches: list[int] = []
        self.refuse_pitch = refuse_pitch

    def generate(self, request: ModelRequest) -> Phrase:
        if any(n.pitch == self.refuse_pitch for n in request.phrase.notes):
            raise ValueError(f"pitch {self.refuse_pitch} refused")
        return super().generate(request)

    def generate_batch(self, requests: list[ModelRequest]) -> list[Phrase]:
        self.batches.append(len(requests))
        return [self.generate(request) for request in requests]


class CrashModel:
    name = "crash"
    modes = frozenset({"transfer"})

    def generate(self, request: ModelRequest) -> Phrase:
        raise ValueError("boom")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.25  # each reading advances a quarter second
        return self.now


def collect(engine_results: queue.Queue[JobResult], count: int) -> list[JobResult]:
    return [engine_results.get(timeout=5.0) for _ in range(count)]


def test_result_carries_phrase_and_latency_from_the_clock() -> None:
    results: queue.Queue[JobResult] = queue.Queue()
    models = {"up": UpModel()}
    engine = Engine(ThreadRunner(models.__getitem__), results.put, clock=FakeClock())
    engine.start()
    try:
        engine.submit(make_job(1))
        (result,) = collect(results, 1)
    finally:
        engine.stop()
    assert result.error is None
    assert [n.pitch for n in result.phrase.notes] == [72, 76]
    # submit read 100.25; the worker read 100.5 (start) and 100.75 (end)
    assert result.submitted_at == pytest.approx(100.25)
    assert result.latency_s == pytest.approx(0.5)
    assert result.compute_s == pytest.approx(0.25)
    assert engine.stats().completed == 1


def test_deadline_in_clock_time_marks_late_results() -> None:
    results: queue.Queue[JobResult] = queue.Queue()
    engine = Engine(ThreadRunner({"up": UpModel()}.__getitem__), results.put, clock=FakeClock())
    engine.start()
    try:
        engine.submit(make_job(1), deadline_time=101.0)  # finishes at 100.75: on time
        (first,) = collect(results, 1)
        engine.submit(make_job(2), deadline_time=101.0)  # finishes at 101.5: late
        (second,) = collect(results, 1)
    finally:
        engine.stop()
    assert (first.late, second.late) == (False, True)
    assert engine.stats().late == 1


def test_busy_model_never_blocks_submit_and_only_a_tracks_own_oldest_job_is_superseded() -> None:
    results: queue.Queue[JobResult] = queue.Queue()
    gate = threading.Event()
    model = UpModel(gate)
    engine = Engine(ThreadRunner({"up": model}.__getitem__), results.put, max_pending=1)
    engine.start()
    try:
        engine.submit(make_job(1, track=0))
        assert model.started.wait(5.0)  # job 1 is running, held on the gate
        engine.submit(make_job(2, track=0))
        engine.submit(make_job(3, track=1))
        engine.submit(make_job(4, track=1))  # track 1 has one waiting: its own job 3 goes
        engine.submit(make_job(5, track=0))  # track 0 likewise: job 2 goes
        superseded = collect(results, 2)
        assert [(r.job.job_id, r.error) for r in superseded] == [(3, SUPERSEDED), (2, SUPERSEDED)]
        gate.set()
        done = collect(results, 3)
    finally:
        engine.stop()
    assert sorted(r.job.job_id for r in done) == [1, 4, 5]
    assert all(r.error is None for r in done)
    stats = engine.stats()
    assert (stats.submitted, stats.superseded, stats.completed) == (5, 2, 3)


def test_many_tracks_never_drop_each_others_jobs_and_wait_together_in_one_batch() -> None:
    """Issue 11: 16 tracks' jobs due at one bar line, a busy model: none superseded, one batch."""
    results: queue.Queue[JobResult] = queue.Queue()
    gate = threading.Event()
    model = BatchUpModel(gate)
    engine = Engine(ThreadRunner({"up": model}.__getitem__), results.put, max_pending=1)
    engine.start()
    try:
        engine.submit(make_job(100, track=99))
        assert model.started.wait(5.0)  # the model is busy with another job
        engine.submit_many([(make_job(i, track=i), None) for i in range(16)])
        gate.set()
        done = collect(results, 17)
    finally:
        engine.stop()
    assert all(r.error is None for r in done) and engine.stats().superseded == 0
    assert model.batches == [16]  # the 16 waiting jobs ran as one forward pass
    assert {r.batch for r in done if r.job.track != 99} == {16}


def test_a_failing_batch_runs_its_jobs_one_by_one() -> None:
    results: queue.Queue[JobResult] = queue.Queue()
    gate = threading.Event()
    model = BatchUpModel(gate, refuse_pitch=61)
    engine = Engine(ThreadRunner({"up": model}.__getitem__), results.put)
    engine.start()
    try:
        engine.submit(make_job(100, track=99))
        assert model.started.wait(5.0)
        engine.submit_many([(make_job(1, track=1), None), (make_job(2, track=2, pitch=61), None)])
        gate.set()
        done = sorted(collect(results, 3), key=lambda r: r.job.job_id)
    finally:
        engine.stop()
    assert [r.error is None for r in done] == [True, False, True]
    assert "61" in done[1].error


def test_crashing_model_is_an_error_result_and_the_worker_survives() -> None:
    results: queue.Queue[JobResult] = queue.Queue()
    models = {"up": UpModel(), "crash": CrashModel()}
    engine = Engine(ThreadRunner(models.__getitem__), results.put)
    engine.start()
    try:
        engine.submit(make_job(1, model="crash"))
        engine.submit(make_job(2, model="missing"))
        engine.submit(make_job(3, model="up"))
        crash, missing, ok = sorted(collect(results, 3), key=lambda r: r.job.job_id)  # lanes run in parallel
    finally:
        engine.stop()
    assert crash.phrase is None and crash.error == "ValueError: boom"
    assert missing.phrase is None and "KeyError" in missing.error
    assert ok.error is None and ok.phrase is not None
    assert engine.stats().errors == 2


def test_a_failing_result_receiver_does_not_kill_the_worker() -> None:
    seen: list[int] = []

    def receiver(result: JobResult) -> None:
        seen.append(result.job.job_id)
        if result.job.job_id == 1:
            raise RuntimeError("receiver bug")

    engine = Engine(ThreadRunner({"up": UpModel()}.__getitem__), receiver)
    engine.start()
    try:
        engine.submit(make_job(1))
        engine.submit(make_job(2))
        for _ in range(500):
            if len(seen) == 2:
                break
            threading.Event().wait(0.01)
    finally:
        engine.stop()
    assert seen == [1, 2]


def test_model_returning_a_non_phrase_is_an_error() -> None:
    class Bad:
        name = "bad"
        modes = frozenset({"transfer"})

        def generate(self, request: ModelRequest) -> Phrase:
            return "not a phrase"  # type: ignore[return-value]

    results: queue.Queue[JobResult] = queue.Queue()
    engine = Engine(ThreadRunner({"bad": Bad()}.__getitem__), results.put)
    engine.start()
    try:
        engine.submit(make_job(1, model="bad"))
        (result,) = collect(results, 1)
    finally:
        engine.stop()
    assert result.phrase is None and "not a Phrase" in result.error


def make_child_model(name: str, device: str, options: dict) -> UpModel | CrashModel:
    """Module-level, so the spawned child can unpickle it."""
    if name == "die":

        class Die:
            modes = frozenset({"transfer"})

            def generate(self, request: ModelRequest) -> Phrase:
                os._exit(3)

        Die.name = "die"  # type: ignore[attr-defined]
        return Die()  # type: ignore[return-value]
    return {"up": UpModel, "crash": CrashModel}[name]()


def test_process_runner_survives_model_errors_and_a_dead_child() -> None:
    results: queue.Queue[JobResult] = queue.Queue()
    engine = Engine(ProcessRunner(make_child_model), results.put)  # one child shared by every lane
    engine.start()
    try:
        for job_id, model in enumerate(["up", "crash", "die"], start=1):
            engine.submit(make_job(job_id, model=model))
        up, crash, die = sorted(collect(results, 3), key=lambda r: r.job.job_id)
        engine.submit(make_job(4, model="up"))  # after the child died: a fresh one answers
        (up_again,) = collect(results, 1)
    finally:
        engine.stop()
    assert [n.pitch for n in up.phrase.notes] == [72, 76]
    assert crash.error == "RuntimeError: ValueError: boom"
    assert die.phrase is None and "exit code 3" in die.error
    assert up_again.error is None and up_again.phrase == up.phrase


def test_a_slow_model_does_not_delay_another_models_jobs() -> None:
    results: queue.Queue[JobResult] = queue.Queue()
    gate = threading.Event()
    slow = UpModel(gate)
    models = {"slow": slow, "up": UpModel()}
    engine = Engine(ThreadRunner(models.__getitem__), results.put)
    engine.start()
    try:
        engine.submit(make_job(1, track=1, model="slow"))
        assert slow.started.wait(5.0)
        engine.submit(make_job(2, track=2, model="up"))
        (fast,) = collect(results, 1)  # done while the slow model is still held
        assert fast.job.job_id == 2 and engine.queue_depth == 1
        gate.set()
        (held,) = collect(results, 1)
    finally:
        engine.stop()
    assert held.job.job_id == 1 and held.error is None


def test_a_runner_factory_gives_each_model_its_own_runner_closed_on_stop() -> None:
    made: list[str] = []
    closed: list[str] = []

    class NamedRunner(ThreadRunner):
        def __init__(self, model: str) -> None:
            super().__init__({"up": UpModel(), "other": UpModel()}.__getitem__)
            self.model = model
            made.append(model)

        def close(self) -> None:
            closed.append(self.model)

    results: queue.Queue[JobResult] = queue.Queue()
    engine = Engine(NamedRunner, results.put)
    engine.submit(make_job(1, model="up"))  # queued before start: runs once started
    engine.start()
    engine.submit(make_job(2, model="other"))
    try:
        done = collect(results, 2)
    finally:
        engine.stop()
    assert sorted(r.job.job_id for r in done) == [1, 2]
    assert sorted(made) == ["other", "up"] and sorted(closed) == ["other", "up"]


def test_prepare_reports_a_model_that_cannot_load() -> None:
    def make_runner(model: str) -> ProcessRunner:
        return ProcessRunner(make_child_model)

    engine = Engine(make_runner, lambda result: None)
    engine.start()
    try:
        with pytest.raises(RuntimeError, match="KeyError: 'nope'"):
            engine.prepare(["nope"])
        engine.prepare(["up"])  # a good one loads
    finally:
        engine.stop()


def test_prepare_starts_a_process_per_model_before_the_first_job() -> None:
    runners: dict[str, ProcessRunner] = {}

    def make_runner(model: str) -> ProcessRunner:
        runners[model] = ProcessRunner(make_child_model)
        return runners[model]

    results: queue.Queue[JobResult] = queue.Queue()
    engine = Engine(make_runner, results.put)
    engine.start()
    try:
        engine.prepare(["up", "crash"])
        assert sorted(runners) == ["crash", "up"]
        assert all(r._process is not None and r._process.is_alive() for r in runners.values())
        engine.submit(make_job(1, model="up"))
        (result,) = collect(results, 1)
    finally:
        engine.stop()
    assert result.error is None
    assert all(r._process is None for r in runners.values())  # closed on stop


def test_a_model_process_that_dies_while_idle_is_restarted_and_reported_before_the_next_job() -> None:
    """Issue 13: a child dead while idle was noticed only by the next job, which paid its restart."""
    runners: dict[str, ProcessRunner] = {}
    faults: queue.Queue[tuple[str, str]] = queue.Queue()

    def make_runner(model: str) -> ProcessRunner:
        runners[model] = ProcessRunner(make_child_model)
        return runners[model]

    results: queue.Queue[JobResult] = queue.Queue()
    engine = Engine(make_runner, results.put, on_fault=lambda *fault: faults.put(fault), idle_check_s=0.05)
    engine.start()
    try:
        engine.prepare(["up"])
        first = runners["up"]._process
        os.kill(first.pid, 9)
        model, reason = faults.get(timeout=10.0)
        assert model == "up" and "died while idle (exit code -9); restarted with up loaded" in reason
        again = runners["up"]._process
        assert again is not None and again is not first and again.is_alive()
        engine.submit(make_job(1, model="up"))
        (result,) = collect(results, 1)
        assert result.error is None
        assert runners["up"]._process is again  # the job ran in the child restarted while idle
    finally:
        engine.stop()


def _child_blas_threads(_name: str, _device: str, _options: object) -> UpModel:
    """A model maker for the child process that reports the BLAS thread settings it started with."""

    class Reporting(UpModel):
        def generate(self, request: ModelRequest) -> Phrase:
            value = int(os.environ.get("OPENBLAS_NUM_THREADS", "0"))
            return Phrase((Note(value, 100, 0.0, 1.0),), bars=1)

    return Reporting()


def test_the_model_child_runs_blas_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    runner = ProcessRunner(_child_blas_threads)
    try:
        assert runner.run("x", make_job(1).request).notes[0].pitch == 1
    finally:
        runner.close()
    assert "OPENBLAS_NUM_THREADS" not in os.environ  # the daemon's own environment is left as it was
