"""MusicVAE training loop: Adam with Magenta's decaying learning rate, gradient clipping, transposition
augmentation, periodic validation, resumable run checkpoints, a CSV log and a PNG of the curves.

Determinism: the model is initialised under `seed`, and every step draws its batch, its transpositions
and its noise from generators seeded by (seed, step), so a run resumed from its checkpoint takes the
same path as an uninterrupted one.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musebridge.models.musicvae.model import MusicVAE, MusicVAEConfig, checkpoint_dict
from musebridge.models.musicvae.options import TrainOptions

RUN_CHECKPOINT = "run.pt"
LOG_FILE = "train_log.csv"
PLOT_FILE = "train_curves.png"
LOG_FIELDS = (
    "step", "seconds", "learning_rate", "loss", "reconstruction", "kl_bits", "beta",
    "sampling_probability", "accuracy", "valid_loss", "valid_reconstruction", "valid_kl_bits",
    "valid_accuracy",
)


@dataclass
class TrainResult:
    model: MusicVAE
    step: int
    history: list[dict[str, float]] = field(default_factory=list)
    out_dir: Path | None = None


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when present, else cpu; other names are used as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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


def _step_generators(
    seed: int, step: int, device: torch.device
) -> tuple[np.random.Generator, torch.Generator]:
    rng = np.random.default_rng([seed, step])
    generator = torch.Generator(device=device)
    generator.manual_seed(seed * 1_000_003 + step)
    return rng, generator


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


def _save_run(path: Path, model: MusicVAE, optimizer: torch.optim.Optimizer, step: int,
              options: TrainOptions, history: list[dict[str, float]]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "config": model.config.to_dict(),
            "options": asdict(options),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "history": history,
        },
        tmp,
    )
    tmp.replace(path)


def _write_log(path: Path, history: list[dict[str, float]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in LOG_FIELDS})


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
) -> TrainResult:
    """Train (or resume) a MusicVAE on token arrays (N, T); writes run.pt, the CSV log and the plot.

    init_from: a shipped checkpoint dict (checkpoint_dict) to fine-tune: its weights, and its step count
    as the first step, so the beta, sampling and learning-rate schedules go on where it stopped (a fresh
    optimizer). Ignored when resuming from an existing run.pt. ValueError if its config differs.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_tokens = np.asarray(train_tokens, dtype=np.int64)
    if train_tokens.ndim != 2 or train_tokens.shape[1] != config.steps:
        raise ValueError(f"training tokens must have shape (N, {config.steps}), got {train_tokens.shape}")
    if train_tokens.shape[0] == 0:
        raise ValueError("no training sequences")
    if options.threads > 0:
        torch.set_num_threads(options.threads)
    device = resolve_device(options.device)

    torch.manual_seed(options.seed)
    model = MusicVAE(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.learning_rate)
    step = 0
    history: list[dict[str, float]] = []
    run_path = out / RUN_CHECKPOINT
    if resume and run_path.exists():
        saved = torch.load(run_path, map_location=device, weights_only=True)
        if saved["config"] != config.to_dict():
            raise ValueError(f"{run_path} was trained with another model config; use a fresh --out-dir")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        step = int(saved["step"])
        history = list(saved["history"])
    elif init_from is not None:
        if dict(init_from["config"]) != config.to_dict():
            raise ValueError("the checkpoint to fine-tune has another model config (use its preset)")
        model.load_state_dict({k: v.float() for k, v in init_from["state_dict"].items()})
        step = int(init_from.get("training", {}).get("steps") or 0)

    valid = None
    if valid_tokens is not None and len(valid_tokens):
        # a seeded spread-out subset: consecutive windows overlap and come from a few tunes only
        valid_np = np.asarray(valid_tokens, dtype=np.int64)
        pick = np.random.default_rng(options.seed).choice(
            len(valid_np), size=min(options.valid_size, len(valid_np)), replace=False
        )
        valid = torch.as_tensor(valid_np[np.sort(pick)], device=device)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=options.steps, initial=step, desc="train vae", unit="step", dynamic_ncols=True)
    model.train()
    started = time.perf_counter()
    running: dict[str, float] = {}
    running_count = 0
    while step < options.steps:
        rng, generator = _step_generators(options.seed, step, device)
        indices = rng.integers(0, train_tokens.shape[0], size=options.batch_size)
        batch_np = transpose_batch(train_tokens[indices], rng, options.max_transpose)
        batch = torch.as_tensor(batch_np, device=device)
        learning_rate = learning_rate_at(options, step)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        parts = model.loss(batch, step, generator)
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), options.clip_norm)
        optimizer.step()
        step += 1
        for key in ("loss", "reconstruction", "kl_bits", "beta", "sampling_probability", "accuracy"):
            running[key] = running.get(key, 0.0) + float(parts[key].detach())
        running_count += 1
        if not math.isfinite(float(parts["loss"].detach())):
            raise FloatingPointError(f"loss is not finite at step {step}")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{float(parts['loss']):.2f}", acc=f"{float(parts['accuracy']):.3f}")
        if step % options.log_every == 0 or step == options.steps:
            row = {k: v / running_count for k, v in running.items()}
            row.update(step=step, seconds=time.perf_counter() - started, learning_rate=learning_rate)
            if valid is not None and (step % options.valid_every == 0 or step == options.steps):
                row.update(validate(model, valid, step))
            history.append(row)
            running, running_count = {}, 0
            _write_log(out / LOG_FILE, history)
            if on_log is not None:
                on_log(row)
        if step % options.checkpoint_every == 0 or step == options.steps:
            _save_run(run_path, model, optimizer, step, options, history)
            plot_curves(history, out / PLOT_FILE)
    if bar is not None:
        bar.close()
    model.eval()
    return TrainResult(model=model, step=step, history=history, out_dir=out)


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
        "seed": training.get("options", {}).get("seed"),
        "steps": training.get("steps"),
        "training_command": training.get("command", ""),
        "training_options": training.get("options", {}),
        "final_training_log": training.get("final", {}),
        "metrics": metrics or "not measured yet: musebridge eval vae --checkpoint <this .pt> --update-card",
    }
    path = card_path(checkpoint)
    path.write_text(yaml.safe_dump(card, sort_keys=False, width=100))
    return path
