"""The one training loop every model family runs through (`fit`).

    job = start_job(options.device)              # one process, or one rank under torchrun
    result = fit(MyFamily(...), options, "runs/x", resume=True, job=job)

Per step: the family's step function (which draws its global batch from the step's seeded streams and
trains on this rank's share). Every `log_every` steps: a row of the ranks' mean scalars (+ validation
every `valid_every`) into train_log.csv and train_log.json; every `checkpoint_every` steps: run.pt and
train_curves.png. Only rank 0 writes. Early stop: after `patience` validations without improvement of
`early_stop` (e.g. "valid_loss", or "valid_accuracy:max"); the best weights are then restored.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from musebridge.models.training.family import Family, StepContext
from musebridge.models.training.job import Job, start_job
from musebridge.models.training.records import (
    JSON_LOG_FILE,
    LOG_FILE,
    PLOT_FILE,
    RUN_CHECKPOINT,
    global_rng_state,
    load_run,
    save_run,
    set_global_rng_state,
    write_csv,
    write_json,
)

PRECISIONS = ("auto", "bf16", "fp32")


@dataclass
class TrainerOptions:
    """How to run the loop (the model's own settings live in the family)."""

    steps: int
    global_batch: int
    seed: int = 0
    log_every: int = 50
    valid_every: int = 250
    checkpoint_every: int = 500
    accumulation: int = 1  # micro-batches per optimisation step (gradient accumulation)
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 elsewhere
    early_stop: str = ""  # a valid_* metric ("name" lower is better, "name:max" higher is better)
    patience: int = 0  # validations without improvement before stopping (0: never stop early)
    device: str = "auto"
    threads: int = 0  # torch CPU threads (0: leave torch's default)
    progress: bool = True
    description: str = "train"
    progress_interval: float = 0.1  # seconds between progress bar refreshes

    def check(self) -> None:
        """ValueError naming the first bad option."""
        for name in ("steps", "global_batch", "log_every", "valid_every", "checkpoint_every", "accumulation"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.patience < 0:
            raise ValueError("patience must be >= 0")
        if self.patience and not self.early_stop.startswith("valid_"):
            raise ValueError("early stop needs a validation metric named valid_..., e.g. valid_loss")


@dataclass
class FitResult:
    family: Family
    step: int
    history: list[dict[str, float]] = field(default_factory=list)
    job: Job | None = None
    stopped_early: bool = False
    best: dict[str, Any] = field(default_factory=dict)  # {"metric", "value", "step"} with early stop
    out_dir: Path | None = None


class _EarlyStop:
    def __init__(self, spec: str, patience: int):
        self.metric, _, mode = spec.partition(":")
        self.higher = mode == "max"
        self.patience = patience
        self.best: float | None = None
        self.best_step = 0
        self.bad = 0
        self.weights: dict[str, Any] | None = None

    def update(self, row: dict[str, float], family: Family) -> bool:
        """Record a validation row; True when the run should stop."""
        if not self.patience or self.metric not in row:
            return False
        value = float(row[self.metric])
        better = self.best is None or (value > self.best if self.higher else value < self.best)
        if better and math.isfinite(value):
            self.best, self.best_step, self.bad = value, int(row["step"]), 0
            self.weights = {k: _cpu_copy(m.state_dict()) for k, m in family.modules.items()}
            return False
        self.bad += 1
        return self.bad >= self.patience

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "bad": self.bad, "weights": self.weights}

    def load(self, state: dict[str, Any]) -> None:
        self.best, self.best_step, self.bad = state["best"], state["best_step"], state["bad"]
        self.weights = state["weights"]


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def fit(
    family: Family,
    options: TrainerOptions,
    out_dir: str | Path,
    *,
    resume: bool = False,
    job: Job | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> FitResult:
    """Train `family` for options.steps steps (or resume its run in out_dir); returns the result.

    Raises ValueError for bad options or a run.pt of another model shape; FloatingPointError (from the
    family's step) for a non-finite loss.
    """
    options.check()
    job = job or start_job(options.device)
    ctx = StepContext(job, options.seed, options.global_batch, options.accumulation, options.precision)
    out = Path(out_dir)
    if job.is_main:
        out.mkdir(parents=True, exist_ok=True)
    if options.threads > 0:
        torch.set_num_threads(options.threads)
    if family.seed_before_build:
        torch.manual_seed(options.seed)
    family.build(ctx)
    step, history = family.start_step, []
    early = _EarlyStop(options.early_stop, options.patience)
    run_path = out / RUN_CHECKPOINT
    saved = None
    if resume:
        # rank 0 reads run.pt and hands it to the others: hosts need not share a file system
        saved = job.broadcast_object(_read_run(run_path) if job.is_main else None)
        if isinstance(saved, str):  # rank 0 could not use it: every rank stops with its reason
            raise ValueError(saved)
    if saved is not None:
        if saved["config"] != family.config_dict():
            raise ValueError(f"{run_path} was trained with another model config; use a fresh --out-dir")
        if int(saved["step"]) > options.steps:  # its card would name fewer steps than the weights had
            raise ValueError(f"{run_path} is at step {saved['step']}, past --steps {options.steps}: "
                             f"give --steps {saved['step']} or more")
        step, history = _restore(family, early, saved, job)
    if resume and job.is_main:
        print(f"resuming {run_path} at step {step} of {options.steps}" if saved is not None
              else f"--resume: no {run_path} yet, so training starts at step 0", file=sys.stderr)
    family.wrap(job)
    job_info = {
        "world_size": job.world_size, "backend": job.backend or None,
        "devices": job.devices or [str(job.device)],
        "global_batch": options.global_batch, "accumulation": options.accumulation,
        "per_rank_batch": options.global_batch // (job.world_size * options.accumulation),
        "bf16_autocast": ctx.bf16, "family": family.name, "options": asdict(options),
    }
    if job.is_main:
        print(job.describe(options.global_batch, options.accumulation), file=sys.stderr, flush=True)
    bar = _progress(options, step) if job.is_main else None
    for module in family.modules.values():
        module.train()
    started = time.perf_counter()
    running: dict[str, float] = {}
    running_count, stopped = 0, False
    saved_step = step
    while step < options.steps and not stopped:
        try:
            parts = family.train_step(ctx, step)
        except KeyboardInterrupt:
            if job.is_main:  # say where the run can go on from (Ctrl-C lands here, mid-step, mostly)
                where = (f"{run_path} holds step {saved_step}: run the same command with --resume to go on"
                         if run_path.exists() else "no checkpoint was written yet")
                print(f"\nstopped at step {step}; {where}", file=sys.stderr)
            raise
        step += 1
        for key, value in parts.items():
            running[key] = running.get(key, 0.0) + value
        running_count += 1
        if bar is not None:
            bar.update(1)
            postfix = family.postfix(parts)
            if postfix:
                bar.set_postfix(postfix, refresh=False)
        last = step == options.steps
        if step % options.log_every == 0 or last or family.log_now(step):
            row = job.mean_of({k: v / running_count for k, v in running.items()})
            row = {"step": step, "seconds": time.perf_counter() - started, **row, **family.log_extras(step)}
            if last or step % options.valid_every == 0:
                if job.is_main:
                    row.update(family.validate(ctx, step))
                stopped = job.broadcast_object(early.update(row, family) if job.is_main else None)
            history.append(row)
            running, running_count = {}, 0
            if job.is_main:
                write_csv(out / LOG_FILE, history, family.log_fields)
                write_json(out / JSON_LOG_FILE, job_info, history, **_best(early))
                if on_log is not None:
                    on_log(row)
        if step % options.checkpoint_every == 0 or last or stopped:
            _checkpoint(family, early, job, out, step, history)
            saved_step = step
    if bar is not None:
        bar.close()
    if stopped:
        message = (f"early stop at step {step}: {early.metric} did not improve for {early.patience} "
                   f"validation(s); best {early.best:.6g} at step {early.best_step} (weights restored)")
        if job.is_main:
            print(message, file=sys.stderr)
            write_json(out / JSON_LOG_FILE, job_info, history, **_best(early), stopped=message)
    if early.weights is not None and (stopped or step >= options.steps):
        for key, module in family.modules.items():
            module.load_state_dict(early.weights[key])
    family.finish()
    for module in family.modules.values():
        module.eval()
    best = {"metric": early.metric, "value": early.best, "step": early.best_step} if early.patience else {}
    return FitResult(family, step, history, job, stopped, best, out)


def _best(early: _EarlyStop) -> dict[str, Any]:
    if not early.patience:
        return {}
    return {"early_stop": {"metric": early.metric, "best": early.best, "best_step": early.best_step,
                           "validations_without_improvement": early.bad, "patience": early.patience}}


def _checkpoint(family: Family, early: _EarlyStop, job: Job, out: Path, step: int, history: list) -> None:
    """run.pt (rank 0 writes; every rank's random states gathered into it), curves, the family's hook."""
    rng_states = job.gather_objects(global_rng_state(job.device))
    family_states = job.gather_objects(family.state_dict())  # per rank: image pools, noise streams...
    if not job.is_main:
        return
    save_run(out / RUN_CHECKPOINT, {
        "family": family.name,
        "config": family.config_dict(),
        "step": step,
        "history": history,
        "modules": {k: m.state_dict() for k, m in family.modules.items()},
        "optimizers": {k: o.state_dict() for k, o in family.optimizers.items()},
        "schedulers": {k: s.state_dict() for k, s in family.schedulers.items()},
        "family_state": family_states,
        "early_stop": early.state(),
        "rng": rng_states,
    })
    family.plot(history, out / PLOT_FILE)
    family.on_checkpoint(step, out)


def _read_run(path: Path) -> dict[str, Any] | str | None:
    """run.pt's state, None when there is none, or the reason it cannot be used (a str)."""
    if not path.exists():
        return None
    try:
        return load_run(path)
    except Exception as error:  # noqa: BLE001 - a damaged file fails in many ways; say which
        return f"cannot resume from {path}: {error}"


def _restore(family: Family, early: _EarlyStop, saved: dict[str, Any], job: Job) -> tuple[int, list]:
    for key, module in family.modules.items():
        module.load_state_dict(saved["modules"][key])
    for key, optimizer in family.optimizers.items():
        optimizer.load_state_dict(saved["optimizers"][key])
    for key, scheduler in family.schedulers.items():
        scheduler.load_state_dict(saved["schedulers"][key])
    early.load(saved["early_stop"])
    # the same world size resumes every rank's streams; another one gives every rank rank 0's
    same = len(saved["rng"]) == job.world_size
    family.load_state_dict(saved["family_state"][job.rank if same else 0])
    set_global_rng_state(saved["rng"][job.rank if same else 0], job.device)
    return int(saved["step"]), list(saved["history"])


def _progress(options: TrainerOptions, initial: int):
    if not options.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=options.steps, initial=initial, desc=options.description, unit="step",
                dynamic_ncols=True, mininterval=options.progress_interval)
