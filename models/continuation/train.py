"""Training of the continuation models (`musebridge train continue --model wavenet|crnngan`).

WaveNet: teacher-forced cross-entropy over 8-bar 4/4 melody windows, ±5 semitone transposition, Adam,
gradient clipping, optional genre conditioning.

C-RNN-GAN (Mogren 2016), in two phases:
1. MSE pretraining: the generator reads the real step t-1 (with noise) and predicts step t; the
   sequence length grows linearly from `min_length` to the full length over `pretrain_steps`.
2. Adversarial: the generator runs free on its own outputs; the discriminator learns real vs
   generated (binary cross-entropy); the generator minimises feature matching on the discriminator's
   last LSTM layer plus `adversarial_weight` x -log D(G(z)); the discriminator is frozen for a step when
   its loss is under `freeze_ratio` x the generator's adversarial loss.
Deviations from the paper, for CPU budgets: Adam instead of SGD 0.1, smaller LSTMs (the paper's 2 x 350
is `CRNNGANConfig.paper()`), no L2 term.

Command line: bridge/commands/continue_.py (`register_train`). Every run writes into --out-dir:
run.pt (resumable), train_log.csv, train_curves.png; with --export, the
shipped checkpoint (.pt) and its model card (.yaml). Training data (dataset windows, toy melodies) comes
from models/continuation/data.py. Batches and noise are drawn from generators seeded
by (seed, step), so runs are repeatable.
"""

from __future__ import annotations

import argparse
import csv
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from musebridge.models.continuation.crnngan import CRNNGAN, CRNNGANConfig, feature_matching_loss
from musebridge.models.continuation.data import (
    crnngan_sequences,
    synthetic_steps,
    synthetic_tokens,
    wavenet_windows,
)
from musebridge.models.continuation.phrase_model import export_checkpoint, write_card
from musebridge.models.continuation.wavenet import MelodyWaveNet, WaveNetConfig
from musebridge.models.encoding import melody

RUN_CHECKPOINT = "run.pt"
LOG_FILE = "train_log.csv"
PLOT_FILE = "train_curves.png"
MODELS = ("wavenet", "crnngan")


@dataclass
class ContinueTrainOptions:
    """Optimisation settings for either model (shapes live in the model configs)."""

    steps: int = 3000
    batch_size: int = 32
    learning_rate: float = 1e-3
    clip_norm: float = 1.0
    seed: int = 0
    log_every: int = 50
    valid_every: int = 250
    checkpoint_every: int = 500
    valid_size: int = 256
    max_transpose: int = 5
    threads: int = 1
    # C-RNN-GAN only
    pretrain_steps: int = 1000
    min_length: int = 8
    discriminator_learning_rate: float = 2e-4
    generator_gan_learning_rate: float = 2e-4
    freeze_ratio: float = 0.7
    adversarial_weight: float = 0.1


@dataclass
class TrainResult:
    model: torch.nn.Module
    step: int
    history: list[dict[str, float]] = field(default_factory=list)


def _rng(seed: int, step: int) -> tuple[np.random.Generator, torch.Generator]:
    return np.random.default_rng([seed, step]), torch.Generator().manual_seed(seed * 1_000_003 + step)


def _save_run(path: Path, model: torch.nn.Module, optimizers: dict, step: int, history: list) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "config": model.config.to_dict(),
            "model": model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "step": step,
            "history": history,
        },
        tmp,
    )
    tmp.replace(path)


def _load_run(path: Path, model: torch.nn.Module, optimizers: dict) -> tuple[int, list]:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved["config"] != model.config.to_dict():
        raise ValueError(f"{path} was trained with another model config; use a fresh --out-dir")
    model.load_state_dict(saved["model"])
    for key, optimizer in optimizers.items():
        optimizer.load_state_dict(saved["optimizers"][key])
    return int(saved["step"]), list(saved["history"])


def _write_log(path: Path, history: list[dict[str, float]]) -> None:
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def plot_curves(history: list[dict[str, float]], path: Path, title: str) -> None:
    """Every logged quantity against step, one panel each, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [
        k for k in dict.fromkeys(k for row in history for k in row) if k not in ("step", "seconds", "phase")
    ]
    if not keys:
        return
    columns = 3
    rows = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(12, 3 * rows), squeeze=False)
    for axis, key in zip(axes.flat, keys, strict=False):
        points = [(r["step"], r[key]) for r in history if key in r]
        axis.plot([p[0] for p in points], [p[1] for p in points], ".-")
        axis.set_title(key, fontsize=9)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(keys) :]:
        axis.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ---- WaveNet ----------------------------------------------------------------------------------------


@torch.no_grad()
def validate_wavenet(
    model: MelodyWaveNet, tokens: torch.Tensor, genre: torch.Tensor | None
) -> dict[str, float]:
    """Teacher-forced NLL (nats per step) and accuracy over token windows [N, T] (batches of 64)."""
    model.eval()
    total_nll, total_correct, count = 0.0, 0.0, 0
    for begin in range(0, tokens.shape[0], 64):
        batch = tokens[begin : begin + 64]
        inputs, positions = model.teacher_forced_inputs(batch, model.config.steps_per_bar)
        g = genre[begin : begin + 64] if genre is not None else None
        logits = model(inputs, positions, g)
        total_nll += float(
            F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.reshape(-1), reduction="sum")
        )
        total_correct += float((logits.argmax(-1) == batch).sum())
        count += batch.numel()
    model.train()
    return {"valid_nll": total_nll / max(count, 1), "valid_accuracy": total_correct / max(count, 1)}


def train_wavenet(
    config: WaveNetConfig,
    options: ContinueTrainOptions,
    train_tokens: np.ndarray,
    train_genres: np.ndarray | None,
    valid_tokens: np.ndarray | None,
    valid_genres: np.ndarray | None,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train a WaveNet on token windows [N, T] (genres [N] used when config.num_genres > 0)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_tokens = melody.validate_tokens(np.asarray(train_tokens).reshape(-1)).reshape(
        np.shape(train_tokens)
    )
    if train_tokens.ndim != 2 or train_tokens.shape[0] == 0:
        raise ValueError(f"training tokens must have shape (N, T) with N > 0, got {train_tokens.shape}")
    use_genre = config.num_genres > 0 and train_genres is not None
    torch.manual_seed(options.seed)
    model = MelodyWaveNet(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.learning_rate)
    step, history = 0, []
    if resume and (out / RUN_CHECKPOINT).exists():
        step, history = _load_run(out / RUN_CHECKPOINT, model, {"model": optimizer})
    valid = valid_g = None
    if valid_tokens is not None and len(valid_tokens):
        valid = torch.as_tensor(np.asarray(valid_tokens)[: options.valid_size], dtype=torch.long)
        if use_genre and valid_genres is not None:
            valid_g = torch.as_tensor(np.asarray(valid_genres)[: options.valid_size], dtype=torch.long)
    bar = _progress(progress, options.steps, step, "train wavenet")
    started, running, running_count = time.perf_counter(), {}, 0
    model.train()
    while step < options.steps:
        rng, _ = _rng(options.seed, step)
        index = rng.integers(0, train_tokens.shape[0], size=options.batch_size)
        batch = melody.augment_transpose(train_tokens[index], rng, options.max_transpose)
        genre = torch.as_tensor(train_genres[index], dtype=torch.long) if use_genre else None
        loss, parts = model.loss(torch.as_tensor(batch), config.steps_per_bar, genre)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), options.clip_norm)
        optimizer.step()
        step += 1
        if not math.isfinite(parts["nll"]):
            raise FloatingPointError(f"loss is not finite at step {step}")
        for key, value in parts.items():
            running[key] = running.get(key, 0.0) + value
        running_count += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(nll=f"{parts['nll']:.3f}", acc=f"{parts['accuracy']:.3f}")
        if step % options.log_every == 0 or step == options.steps:
            row = {"step": step, "seconds": time.perf_counter() - started}
            row.update({k: v / running_count for k, v in running.items()})
            if valid is not None and (step % options.valid_every == 0 or step == options.steps):
                row.update(validate_wavenet(model, valid, valid_g))
            history.append(row)
            running, running_count = {}, 0
            _write_log(out / LOG_FILE, history)
        if step % options.checkpoint_every == 0 or step == options.steps:
            _save_run(out / RUN_CHECKPOINT, model, {"model": optimizer}, step, history)
            plot_curves(history, out / PLOT_FILE, "WaveNet continuation")
    if bar is not None:
        bar.close()
    return TrainResult(model.eval(), step, history)


# ---- C-RNN-GAN --------------------------------------------------------------------------------------


def transpose_steps(
    batch: np.ndarray, rng: np.random.Generator, max_semitones: int, tones_per_step: int
) -> np.ndarray:
    """Scaled step features [B, T, F] with each row's sounding frequencies moved by a random ±semitones."""
    if max_semitones <= 0:
        return batch
    out = np.array(batch, dtype=np.float32, copy=True).reshape(
        batch.shape[0], batch.shape[1], tones_per_step, 4
    )
    shifts = rng.integers(-max_semitones, max_semitones + 1, size=batch.shape[0]) / 12.0
    sounding = out[..., 2] > 0
    out[..., 1] += np.where(sounding, shifts[:, None, None], 0.0).astype(np.float32)
    return out.reshape(batch.shape)


def train_crnngan(
    config: CRNNGANConfig,
    options: ContinueTrainOptions,
    train_steps: np.ndarray,
    valid_steps: np.ndarray | None,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train a C-RNN-GAN on scaled step sequences [N, T, F]: MSE pretraining, then the GAN phase."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = np.asarray(train_steps, dtype=np.float32)
    if data.ndim != 3 or data.shape[0] == 0 or data.shape[2] != config.step_size:
        raise ValueError(
            f"training steps must have shape (N, T, {config.step_size}) with N > 0, got {data.shape}"
        )
    if not np.all(np.isfinite(data)):
        raise ValueError("training steps hold NaN or infinity")
    full_length = data.shape[1]
    torch.manual_seed(options.seed)
    model = CRNNGAN(config)
    g_pre = torch.optim.Adam(model.generator.parameters(), lr=options.learning_rate)
    g_gan = torch.optim.Adam(
        model.generator.parameters(), lr=options.generator_gan_learning_rate, betas=(0.5, 0.999)
    )
    d_opt = torch.optim.Adam(
        model.discriminator.parameters(), lr=options.discriminator_learning_rate, betas=(0.5, 0.999)
    )
    optimizers = {"g_pre": g_pre, "g_gan": g_gan, "d": d_opt}
    step, history = 0, []
    if resume and (out / RUN_CHECKPOINT).exists():
        step, history = _load_run(out / RUN_CHECKPOINT, model, optimizers)
    valid = (
        torch.as_tensor(valid_steps[: options.valid_size])
        if valid_steps is not None and len(valid_steps)
        else None
    )
    bar = _progress(progress, options.steps, step, "train crnngan")
    started, running, running_count = time.perf_counter(), {}, 0
    model.train()
    while step < options.steps:
        rng, generator = _rng(options.seed, step)
        index = rng.integers(0, data.shape[0], size=options.batch_size)
        real = torch.as_tensor(
            transpose_steps(data[index], rng, options.max_transpose, config.tones_per_step)
        )
        if step < options.pretrain_steps:
            length = min(
                full_length,
                options.min_length
                + (full_length - options.min_length) * step // max(1, options.pretrain_steps),
            )
            parts = _pretrain_step(model, g_pre, real[:, :length], generator, options.clip_norm)
            parts["length"] = float(length)
        else:
            parts = _gan_step(model, g_gan, d_opt, real, generator, options)
        step += 1
        if not all(math.isfinite(v) for v in parts.values()):
            raise FloatingPointError(f"loss is not finite at step {step}: {parts}")
        for key, value in parts.items():
            running[key] = running.get(key, 0.0) + value
        running_count += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                {k: f"{v:.3f}" for k, v in parts.items() if k in ("mse", "d_loss", "feature_matching")}
            )
        if step % options.log_every == 0 or step == options.steps or step == options.pretrain_steps:
            row = {"step": step, "seconds": time.perf_counter() - started}
            row.update({k: v / running_count for k, v in running.items()})
            if valid is not None and (step % options.valid_every == 0 or step == options.steps):
                row["valid_mse"] = _valid_mse(model, valid, options.seed)
            history.append(row)
            running, running_count = {}, 0
            _write_log(out / LOG_FILE, history)
        if step % options.checkpoint_every == 0 or step == options.steps:
            _save_run(out / RUN_CHECKPOINT, model, optimizers, step, history)
            plot_curves(history, out / PLOT_FILE, "C-RNN-GAN continuation")
    if bar is not None:
        bar.close()
    return TrainResult(model.eval(), step, history)


def _pretrain_step(
    model: CRNNGAN, optimizer, real: torch.Tensor, generator: torch.Generator, clip: float
) -> dict:
    noise = torch.rand(real.shape[0], real.shape[1], model.config.noise_size, generator=generator)
    predicted, _ = model.generator.teacher_forced(real, noise)
    loss = F.mse_loss(predicted, real)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.generator.parameters(), clip)
    optimizer.step()
    return {"mse": float(loss.detach())}


def _gan_step(model: CRNNGAN, g_opt, d_opt, real: torch.Tensor, generator: torch.Generator, options) -> dict:
    batch, length = real.shape[0], real.shape[1]
    noise = torch.rand(batch, length, model.config.noise_size, generator=generator)
    fake = model.generator.run(length, noise)
    eps = 1e-6
    # discriminator (frozen for this step when it is already far ahead of the generator)
    p_real, _ = model.discriminator(real)
    p_fake, _ = model.discriminator(fake.detach())
    d_loss = -(torch.log(p_real + eps) + torch.log(1 - p_fake + eps)).mean()
    g_adversarial_now = -torch.log(p_fake.detach() + eps).mean()  # -log D(G(z)) before this step
    frozen = float(d_loss.detach()) < options.freeze_ratio * float(g_adversarial_now)
    if not frozen:
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        torch.nn.utils.clip_grad_norm_(model.discriminator.parameters(), options.clip_norm)
        d_opt.step()
    # generator: feature matching on D's last layer + a little of the adversarial loss
    with torch.no_grad():
        _, real_features = model.discriminator(real)
    p_gen, fake_features = model.discriminator(fake)
    g_adversarial = -torch.log(p_gen + eps).mean()
    matching = feature_matching_loss(real_features, fake_features)
    g_loss = matching + options.adversarial_weight * g_adversarial
    g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    torch.nn.utils.clip_grad_norm_(model.generator.parameters(), options.clip_norm)
    g_opt.step()
    return {
        "d_loss": float(d_loss.detach()),
        "g_adversarial": float(g_adversarial.detach()),
        "feature_matching": float(matching.detach()),
        "d_real": float(p_real.mean().detach()),
        "d_fake": float(p_fake.mean().detach()),
        "d_frozen": float(frozen),
    }


@torch.no_grad()
def _valid_mse(model: CRNNGAN, valid: torch.Tensor, seed: int) -> float:
    model.eval()
    noise = torch.rand(
        valid.shape[0], valid.shape[1], model.config.noise_size, generator=torch.Generator().manual_seed(seed)
    )
    predicted, _ = model.generator.teacher_forced(valid, noise)
    model.train()
    return float(F.mse_loss(predicted, valid))


def _progress(enabled: bool, total: int, initial: int, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True, mininterval=5.0)


# ---- command line -----------------------------------------------------------------------------------


def command_line(args: argparse.Namespace) -> str:
    """`musebridge train continue ...` as these arguments spell it (for model cards)."""
    words = ["musebridge", "train", "continue"]
    for key, value in vars(args).items():
        if key in ("handler", "command", "train_model") or value is None or value is False:
            continue
        words.append(f"--{key.replace('_', '-')}")
        if isinstance(value, list | tuple):
            words += [str(v) for v in value]
        elif value is not True:
            words.append(_portable(str(value)))
    return shlex.join(words)


def _portable(text: str) -> str:
    """A path under the working folder as a relative path, any other absolute path as its last two parts
    (model cards must not carry machine-specific paths)."""
    path = Path(text)
    if not path.is_absolute():
        return text
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(Path(*path.parts[-2:]))


def run(args: argparse.Namespace) -> int:
    """`musebridge train continue`: load data, train, write the run folder and optionally export."""
    from musebridge.errors import UserError

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    options = ContinueTrainOptions(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        threads=args.threads,
        pretrain_steps=min(args.pretrain_steps, args.steps),
        log_every=max(1, min(50, args.steps // 10 or 1)),
        valid_every=max(1, min(250, args.steps // 4 or 1)),
        checkpoint_every=max(1, min(500, args.steps)),
    )
    dataset, genres = None, ["synthetic"] if args.synthetic else []
    if not args.synthetic:
        from musebridge.models.data.dataset import TuneDataset

        try:
            dataset = TuneDataset.load(args.data)
            genres = list(args.genres) if args.genres else list(dataset.genres)
            dataset.indices(genres)
        except ValueError as error:
            raise UserError(str(error)) from error
    windows: dict[str, Any] = {"bars": args.window_bars, "meter": "4/4"}
    progress = not args.no_progress
    if args.model == "wavenet":
        if args.synthetic:
            train_x, train_g = synthetic_tokens(512, args.window_bars * 16, args.seed), None
            valid_x, valid_g = synthetic_tokens(64, args.window_bars * 16, args.seed + 1), None
        else:
            train_w = wavenet_windows(dataset, "train", args.window_bars, genres)
            valid_w = wavenet_windows(dataset, "valid", args.window_bars, genres)
            train_x, train_g, valid_x, valid_g = train_w.tokens, train_w.genre, valid_w.tokens, valid_w.genre
            if len(train_w):
                genres = list(train_w.genres)
        if len(train_x) == 0:
            raise UserError("no training windows: is the dataset empty for these genres?")
        windows.update(train=int(len(train_x)), valid=int(len(valid_x)), hop_bars=2)
        config = WaveNetConfig(
            residual_channels=args.channels,
            skip_channels=2 * args.channels,
            blocks=args.blocks,
            num_genres=len(genres) if args.genre_conditioning and not args.synthetic else 0,
        )
        print(
            f"wavenet: {len(train_x)} train / {len(valid_x)} valid windows, receptive field "
            f"{config.receptive_field} steps",
            file=sys.stderr,
        )
        result = train_wavenet(
            config,
            options,
            train_x,
            train_g,
            valid_x,
            valid_g,
            args.out_dir,
            resume=args.resume,
            progress=progress,
        )
    else:
        config = CRNNGANConfig.paper() if args.size == "paper" else CRNNGANConfig()
        if args.synthetic:
            train_x = synthetic_steps(512, args.sequence_length, args.seed)
            valid_x = synthetic_steps(64, args.sequence_length, args.seed + 1)
        else:
            train_x = crnngan_sequences(dataset, "train", args.sequence_length, args.window_bars, genres)
            valid_x = crnngan_sequences(dataset, "valid", args.sequence_length, args.window_bars, genres)
        if len(train_x) == 0:
            raise UserError("no training sequences: is the dataset empty for these genres?")
        windows.update(
            train=int(len(train_x)), valid=int(len(valid_x)), steps=args.sequence_length, hop_bars=4
        )
        print(
            f"crnngan: {len(train_x)} train / {len(valid_x)} valid sequences of {args.sequence_length} steps",
            file=sys.stderr,
        )
        result = train_crnngan(
            config, options, train_x, valid_x, args.out_dir, resume=args.resume, progress=progress
        )
    final = result.history[-1] if result.history else {}
    print("final: " + ", ".join(f"{k}={v:.4g}" for k, v in final.items()), file=sys.stderr)
    if args.export:
        training = {
            "command": command_line(args),
            "options": asdict(options),
            "steps": result.step,
            "windows": windows,
            "final": final,
        }
        path = export_checkpoint(result.model, args.model, args.export, genres, training)
        card = write_card(path, args.model, result.model.config.to_dict(), genres, training)
        print(f"exported {path} and {card}", file=sys.stderr)
    return 0
