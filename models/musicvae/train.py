"""MusicVAE on the shared trainer (models/training): Adam with Magenta's decaying learning rate, gradient
clipping, transposition augmentation, periodic validation, resumable run.pt, CSV/JSON logs and curves.

Determinism: the model is initialised under `seed`, and every step draws its global batch, its
transpositions and its noise from generators seeded by (seed, step), so a resumed run takes the same
path as an uninterrupted one, and the global batch is the same on any number of processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musebridge.models.musicvae.model import MusicVAE, MusicVAEConfig, checkpoint_dict
from musebridge.models.musicvae.options import TrainOptions
from musebridge.models.training import (
    LOG_FILE,
    PLOT_FILE,
    RUN_CHECKPOINT,
    Family,
    Job,
    Method,
    StepContext,
    TrainerOptions,
    fit,
)
from musebridge.models.training.records import card_training_fields

__all__ = ["LOG_FILE", "PLOT_FILE", "RUN_CHECKPOINT", "TrainOptions", "TrainResult", "train_vae"]
LOG_FIELDS = (
    "step", "seconds", "learning_rate", "loss", "reconstruction", "kl_bits", "beta",
    "sampling_probability", "accuracy", "valid_loss", "valid_reconstruction", "valid_kl_bits",
    "valid_accuracy",
)
LOGGED = ("loss", "reconstruction", "kl_bits", "beta", "sampling_probability", "accuracy")


@dataclass
class TrainResult:
    model: MusicVAE
    step: int
    history: list[dict[str, float]] = field(default_factory=list)
    out_dir: Path | None = None
    job: Job | None = None


def learning_rate_at(options: TrainOptions, step: int) -> float:
    """Magenta's schedule: (lr - min_lr) * decay ** step + min_lr."""
    span = options.learning_rate - options.min_learning_rate
    return span * options.decay_rate**step + options.min_learning_rate


def transpose_batch(tokens: np.ndarray, rng: np.random.Generator, max_semitones: int) -> np.ndarray:
    """Each row (B, T) moved by a random shift in ±max_semitones that keeps its notes in 2..89."""
    if max_semitones <= 0:
        return tokens
    notes = tokens >= 2
    big = np.iinfo(np.int64).max
    low = np.where(notes, tokens, big).min(axis=1)
    high = np.where(notes, tokens, -1).max(axis=1)
    has_notes = notes.any(axis=1)
    lowest_shift = np.where(has_notes, np.maximum(-max_semitones, 2 - low), 0)
    highest_shift = np.where(has_notes, np.minimum(max_semitones, 89 - high), 0)
    shifts = rng.integers(lowest_shift, highest_shift + 1)  # (B,)
    return np.where(notes, tokens + shifts[:, None], tokens)


@torch.no_grad()
def validate(model: MusicVAE, tokens: torch.Tensor, step: int, batch_size: int = 256) -> dict[str, float]:
    """Loss parts and teacher-forced accuracy on `tokens` (N, T), z drawn with a fixed seed."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=tokens.device)
    generator.manual_seed(12345)
    totals: dict[str, float] = {}
    count = 0
    for start in range(0, tokens.shape[0], batch_size):
        batch = tokens[start : start + batch_size]
        parts = model.loss(batch, step, generator)
        for key in ("loss", "reconstruction", "kl_bits", "accuracy"):
            totals[key] = totals.get(key, 0.0) + float(parts[key].detach()) * batch.shape[0]
        count += batch.shape[0]
    model.train(was_training)
    return {f"valid_{k}": v / max(count, 1) for k, v in totals.items()}


def plot_curves(history: list[dict[str, float]], path: Path) -> None:
    """Loss, KL, accuracy and schedules against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    steps = [row["step"] for row in history]
    valid = [row for row in history if "valid_loss" in row]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    axes[0, 0].plot(steps, [r["reconstruction"] for r in history], label="train reconstruction (nats/seq)")
    valid_steps = [r["step"] for r in valid]
    axes[0, 0].plot(valid_steps, [r["valid_reconstruction"] for r in valid], "o-", label="valid")
    axes[0, 0].set_yscale("log")
    axes[0, 1].plot(steps, [r["kl_bits"] for r in history], label="train KL (bits)")
    axes[0, 1].plot([r["step"] for r in valid], [r["valid_kl_bits"] for r in valid], "o-", label="valid KL")
    axes[1, 0].plot(steps, [r["accuracy"] for r in history], label="train accuracy (teacher-forced)")
    axes[1, 0].plot([r["step"] for r in valid], [r["valid_accuracy"] for r in valid], "o-", label="valid")
    axes[1, 1].plot(steps, [r["beta"] for r in history], label="beta")
    axes[1, 1].plot(steps, [r["sampling_probability"] for r in history], label="scheduled sampling p")
    axes[1, 1].plot(steps, [r["learning_rate"] * 100 for r in history], label="learning rate x100")
    for axis in axes.flat:
        axis.set_xlabel("step")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


class VAEFamily(Family):
    """MusicVAE's step on the trainer: one model, one Adam, Magenta's learning-rate decay."""

    name = "vae"
    title = "MusicVAE"
    log_fields = LOG_FIELDS

    def __init__(self, config: MusicVAEConfig, options: TrainOptions, train_tokens: np.ndarray,
                 valid_tokens: np.ndarray | None, init_from: dict[str, Any] | None = None):
        super().__init__()
        self.init_from = init_from
        self.config = config
        self.options = options
        self.train_tokens = train_tokens
        self.valid_tokens = valid_tokens

    def build(self, ctx: StepContext) -> None:
        self.model = MusicVAE(self.config).to(ctx.device)
        self.modules = {"model": self.model}
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.options.learning_rate)
        self.optimizers = {"optimizer": self.optimizer}
        if self.init_from is not None:  # fine-tuning (a resumed run.pt overrides both)
            if dict(self.init_from["config"]) != self.config.to_dict():
                raise ValueError("the checkpoint to fine-tune has another model config (use its preset)")
            self.model.load_state_dict({k: v.float() for k, v in self.init_from["state_dict"].items()})
            self.start_step = int(self.init_from.get("training", {}).get("steps") or 0)
        self.valid = None
        if self.valid_tokens is not None and len(self.valid_tokens):
            # a seeded spread-out subset: consecutive windows overlap and come from a few tunes only
            valid_np = np.asarray(self.valid_tokens, dtype=np.int64)
            pick = np.random.default_rng(self.options.seed).choice(
                len(valid_np), size=min(self.options.valid_size, len(valid_np)), replace=False
            )
            self.valid = torch.as_tensor(valid_np[np.sort(pick)], device=ctx.device)

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def wrap(self, job: Job) -> None:
        self.loss = job.wrap(Method(self.model, "loss"))

    def train_step(self, ctx: StepContext, step: int) -> dict[str, float]:
        options = self.options
        rng, generator = ctx.step_rngs(step, ctx.device)
        indices = rng.integers(0, self.train_tokens.shape[0], size=options.batch_size)
        batch = transpose_batch(self.train_tokens[indices], rng, options.max_transpose)
        learning_rate = learning_rate_at(options, step)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        self.optimizer.zero_grad(set_to_none=True)
        parts = ctx.accumulate(
            self.loss, ctx.micro_batches(batch),
            lambda loss, tokens: loss(torch.as_tensor(tokens, device=ctx.device), step, generator),
        )
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), options.clip_norm)
        self.optimizer.step()
        if not math.isfinite(parts["loss"]):
            raise FloatingPointError(f"loss is not finite at step {step + 1}")
        return {k: parts[k] for k in LOGGED}

    def log_extras(self, step: int) -> dict[str, float]:
        return {"learning_rate": learning_rate_at(self.options, step - 1)}  # the last step's rate

    def validate(self, ctx: StepContext, step: int) -> dict[str, float]:
        return validate(self.model, self.valid, step) if self.valid is not None else {}

    def postfix(self, parts: dict[str, float]) -> dict[str, str]:
        return {"loss": f"{parts['loss']:.2f}", "acc": f"{parts['accuracy']:.3f}"}

    def plot(self, history, path: Path) -> None:
        plot_curves(list(history), path)


def trainer_options(options: TrainOptions, progress: bool, description: str) -> TrainerOptions:
    """The loop settings of a family's options (the fields every family's options share)."""
    return TrainerOptions(
        steps=options.steps, global_batch=options.batch_size, seed=options.seed, log_every=options.log_every,
        valid_every=options.valid_every, checkpoint_every=options.checkpoint_every,
        accumulation=options.accumulation, precision=options.precision, early_stop=options.early_stop,
        patience=options.patience, device=options.device, threads=options.threads, progress=progress,
        description=description,
    )


def train_vae(
    config: MusicVAEConfig,
    options: TrainOptions,
    train_tokens: np.ndarray,
    valid_tokens: np.ndarray | None,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    on_log: Callable[[dict[str, float]], None] | None = None,
    init_from: dict[str, Any] | None = None,
    job: Job | None = None,
) -> TrainResult:
    """Train (or resume) a MusicVAE on token arrays (N, T); writes run.pt, the logs and the plot (rank 0).

    `options.batch_size` is the global batch (split over the ranks of a torchrun job).
    init_from: a shipped checkpoint dict (checkpoint_dict) to fine-tune: its weights, and its step count
    as the first step, so the beta, sampling and learning-rate schedules go on where it stopped (a fresh
    optimizer). Ignored when resuming from an existing run.pt. ValueError if its config differs.
    Raises ValueError for tokens of the wrong shape or a run.pt of another config.
    """
    train_tokens = np.asarray(train_tokens, dtype=np.int64)
    if train_tokens.ndim != 2 or train_tokens.shape[1] != config.steps:
        raise ValueError(f"training tokens must have shape (N, {config.steps}), got {train_tokens.shape}")
    if train_tokens.shape[0] == 0:
        raise ValueError("no training sequences")
    family = VAEFamily(config, options, train_tokens, valid_tokens, init_from)
    result = fit(family, trainer_options(options, progress, "train vae"), out_dir, resume=resume, job=job,
                 on_log=on_log)
    return TrainResult(model=family.model, step=result.step, history=result.history, out_dir=Path(out_dir),
                       job=result.job)


def export_model(
    model: MusicVAE, path: str | Path, *, genres: list[str], training: dict[str, Any], half: bool = True
) -> Path:
    """Write the shipped checkpoint (weights-only loadable, float16 weights by default)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint_dict(model, genres=genres, training=training, half=half), target)
    return target


def card_path(checkpoint: str | Path) -> Path:
    """The model card (.yaml) beside a checkpoint."""
    return Path(checkpoint).with_suffix(".yaml")


def write_card(
    checkpoint: str | Path, *, config: dict[str, Any], genres: list[str], training: dict[str, Any],
    dataset_info: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
) -> Path:
    """Write the model card: data, config, seed, steps, the training command, metrics (if measured)."""
    import yaml

    checkpoint = Path(checkpoint)
    card = {
        "model": "MusicVAE (Roberts et al. 2018)",
        "checkpoint": checkpoint.name,
        "encoding": "melody90: 0 hold, 1 note-off, 2..89 = MIDI 21..108; 16 steps per 4/4 bar",
        "data": {
            "source": "music21 corpus via `musebridge data build` (split by tune: train/valid/test)",
            "genres": list(genres),
            "windows": training.get("windows", {}),
            "dataset_info": dataset_info or {},
        },
        "config": config,
        **card_training_fields(training),
        "metrics": metrics or "not measured yet: musebridge eval vae --checkpoint <this .pt> --update-card",
    }
    path = card_path(checkpoint)
    path.write_text(yaml.safe_dump(card, sort_keys=False, width=100))
    return path
