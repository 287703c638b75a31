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

Both train on the shared trainer (models/training: resume, logs, curves, DDP under torchrun). Command
line: bridge/commands/continue_.py (`register_train`). Every run writes into --out-dir: run.pt
(resumable), train_log.csv, train_log.json, train_curves.png; with --export, the shipped checkpoint
(.pt) and its model card (.yaml). Training data (dataset windows, toy melodies) comes from
models/continuation/data.py. Batches and noise are drawn from generators seeded by (seed, step), so
runs are repeatable and the global batch is the same on any number of processes.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
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
from musebridge.models.training.records import validation_warning

__all__ = [
    "LOG_FILE", "PLOT_FILE", "RUN_CHECKPOINT", "ContinueTrainOptions", "train_crnngan", "train_wavenet",
]
MODELS = ("wavenet", "crnngan")
GAN_BETAS = (0.5, 0.999)


@dataclass
class ContinueTrainOptions:
    """Optimisation settings for either model (shapes live in the model configs)."""

    steps: int = 3000
    batch_size: int = 32  # the global batch (split over the ranks of a torchrun job)
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
    # the shared trainer's (models/training): see docs/training.md
    device: str = "auto"
    accumulation: int = 1
    precision: str = "auto"
    early_stop: str = ""
    patience: int = 0


@dataclass
class TrainResult:
    model: torch.nn.Module
    step: int
    history: list[dict[str, float]] = field(default_factory=list)
    job: Job | None = None


def _fit(family: Family, options: ContinueTrainOptions, out_dir: str | Path, resume: bool, progress: bool,
         job: Job | None) -> TrainResult:
    loop = TrainerOptions(
        steps=options.steps, global_batch=options.batch_size, seed=options.seed, log_every=options.log_every,
        valid_every=options.valid_every, checkpoint_every=options.checkpoint_every,
        accumulation=options.accumulation, precision=options.precision, early_stop=options.early_stop,
        patience=options.patience, device=options.device, threads=options.threads, progress=progress,
        description=f"train {family.name}", progress_interval=5.0,
    )
    result = fit(family, loop, out_dir, resume=resume, job=job)
    return TrainResult(family.model, result.step, result.history, result.job)


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


def _wavenet_loss(model: MelodyWaveNet, tokens: torch.Tensor, genre: torch.Tensor | None) -> dict[str, Any]:
    loss, parts = model.loss(tokens, model.config.steps_per_bar, genre)
    return {"loss": loss, **parts}


class WaveNetFamily(Family):
    """Teacher-forced cross-entropy, one Adam, transposition augmentation."""

    name = "wavenet"
    title = "WaveNet continuation"

    def __init__(self, config: WaveNetConfig, options: ContinueTrainOptions, tokens: np.ndarray,
                 genres: np.ndarray | None, valid_tokens: np.ndarray | None, valid_genres: np.ndarray | None):
        super().__init__()
        self.config, self.options = config, options
        self.tokens, self.genres = tokens, genres
        self.valid_tokens, self.valid_genres = valid_tokens, valid_genres
        self.use_genre = config.num_genres > 0 and genres is not None

    def build(self, ctx: StepContext) -> None:
        self.model = MelodyWaveNet(self.config).to(ctx.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.options.learning_rate)
        self.modules, self.optimizers = {"model": self.model}, {"model": self.optimizer}
        self.valid = self.valid_g = None
        if self.valid_tokens is not None and len(self.valid_tokens):
            size = self.options.valid_size
            self.valid = torch.as_tensor(np.asarray(self.valid_tokens)[:size], dtype=torch.long,
                                         device=ctx.device)
            if self.use_genre and self.valid_genres is not None:
                self.valid_g = torch.as_tensor(np.asarray(self.valid_genres)[:size], dtype=torch.long,
                                               device=ctx.device)

    def config_dict(self) -> dict[str, Any]:
        return self.model.config.to_dict()

    def wrap(self, job: Job) -> None:
        self.loss = job.wrap(Method(self.model, _wavenet_loss))

    def train_step(self, ctx: StepContext, step: int) -> dict[str, float]:
        rng, _ = ctx.step_rngs(step)
        index = rng.integers(0, self.tokens.shape[0], size=self.options.batch_size)
        batch = melody.augment_transpose(self.tokens[index], rng, self.options.max_transpose)
        genre = self.genres[index] if self.use_genre else np.zeros(len(index), dtype=np.int64)
        use_genre, device = self.use_genre, ctx.device

        def forward(loss, tokens, genres):
            g = torch.as_tensor(genres, dtype=torch.long, device=device) if use_genre else None
            return loss(torch.as_tensor(tokens, device=device), g)

        self.optimizer.zero_grad(set_to_none=True)
        parts = ctx.accumulate(self.loss, ctx.micro_batches(batch, genre), forward)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.options.clip_norm)
        self.optimizer.step()
        if not math.isfinite(parts["nll"]):
            raise FloatingPointError(f"loss is not finite at step {step + 1}")
        return {k: v for k, v in parts.items() if k != "loss"}

    def validate(self, ctx: StepContext, step: int) -> dict[str, float]:
        return validate_wavenet(self.model, self.valid, self.valid_g) if self.valid is not None else {}

    def postfix(self, parts: dict[str, float]) -> dict[str, str]:
        return {"nll": f"{parts['nll']:.3f}", "acc": f"{parts['accuracy']:.3f}"}


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
    job: Job | None = None,
) -> TrainResult:
    """Train a WaveNet on token windows [N, T] (genres [N] used when config.num_genres > 0)."""
    train_tokens = melody.validate_tokens(np.asarray(train_tokens).reshape(-1)).reshape(
        np.shape(train_tokens)
    )
    if train_tokens.ndim != 2 or train_tokens.shape[0] == 0:
        raise ValueError(f"training tokens must have shape (N, T) with N > 0, got {train_tokens.shape}")
    family = WaveNetFamily(config, options, train_tokens, train_genres, valid_tokens, valid_genres)
    return _fit(family, options, out_dir, resume, progress, job)


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


def _discriminate_pair(discriminator: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor):
    """(p_real, p_fake) in one forward, so that DDP sees both uses of the discriminator at once."""
    return discriminator(real)[0], discriminator(fake)[0]


class CRNNGANFamily(Family):
    """MSE pretraining of the generator, then the GAN: D (frozen for a step when far ahead), then G by
    feature matching. Under DDP the generator and the discriminator are wrapped apart (disjoint
    parameters), and the freeze decision uses the ranks' mean losses, so every rank takes it alike."""

    name = "crnngan"
    title = "C-RNN-GAN continuation"

    def __init__(self, config: CRNNGANConfig, options: ContinueTrainOptions, data: np.ndarray,
                 valid_steps: np.ndarray | None):
        super().__init__()
        self.config, self.options, self.data, self.valid_steps = config, options, data, valid_steps

    def build(self, ctx: StepContext) -> None:
        options = self.options
        if ctx.accumulation != 1 and options.steps > options.pretrain_steps:
            raise ValueError("the C-RNN-GAN's adversarial phase takes whole batches: --grad-accumulation 1")
        self.model = CRNNGAN(self.config).to(ctx.device)
        generator, discriminator = self.model.generator.parameters, self.model.discriminator.parameters
        self.optimizers = {
            "g_pre": torch.optim.Adam(generator(), lr=options.learning_rate),
            "g_gan": torch.optim.Adam(generator(), lr=options.generator_gan_learning_rate, betas=GAN_BETAS),
            "d": torch.optim.Adam(discriminator(), lr=options.discriminator_learning_rate, betas=GAN_BETAS),
        }
        self.modules = {"model": self.model}
        self.valid = None
        if self.valid_steps is not None and len(self.valid_steps):
            self.valid = torch.as_tensor(self.valid_steps[: options.valid_size], device=ctx.device)

    def config_dict(self) -> dict[str, Any]:
        return self.model.config.to_dict()

    def wrap(self, job: Job) -> None:
        # one wrapper per parameter set: both generator methods go through the same one
        self.generator = job.wrap(Method(self.model.generator, _generator_call))
        self.discriminate = job.wrap(Method(self.model.discriminator, _discriminate_pair))

    def train_step(self, ctx: StepContext, step: int) -> dict[str, float]:
        options, full_length = self.options, self.data.shape[1]
        rng, generator = ctx.step_rngs(step)
        index = rng.integers(0, self.data.shape[0], size=options.batch_size)
        real = transpose_steps(self.data[index], rng, options.max_transpose, self.config.tones_per_step)
        if step < options.pretrain_steps:
            length = min(full_length, options.min_length
                         + (full_length - options.min_length) * step // max(1, options.pretrain_steps))
            parts = self._pretrain_step(ctx, real[:, :length], generator)
            parts["length"] = float(length)
        else:
            parts = self._gan_step(ctx, real, generator)
        if not all(math.isfinite(v) for v in parts.values()):
            raise FloatingPointError(f"loss is not finite at step {step + 1}: {parts}")
        return parts

    def _pretrain_step(self, ctx: StepContext, real: np.ndarray, generator: torch.Generator) -> dict:
        optimizer, noise_size, device = self.optimizers["g_pre"], self.config.noise_size, ctx.device

        def forward(call, batch):
            batch = torch.as_tensor(batch, device=device)
            noise = torch.rand(batch.shape[0], batch.shape[1], noise_size, generator=generator).to(device)
            predicted, _ = call("teacher_forced", batch, noise)
            return {"loss": F.mse_loss(predicted, batch)}

        optimizer.zero_grad(set_to_none=True)
        parts = ctx.accumulate(self.generator, ctx.micro_batches(real), forward)
        torch.nn.utils.clip_grad_norm_(self.model.generator.parameters(), self.options.clip_norm)
        optimizer.step()
        return {"mse": parts["loss"]}

    def _gan_step(self, ctx: StepContext, real_np: np.ndarray, generator: torch.Generator) -> dict:
        model, options, eps = self.model, self.options, 1e-6
        g_opt, d_opt = self.optimizers["g_gan"], self.optimizers["d"]
        real = torch.as_tensor(ctx.shard(real_np), device=ctx.device)
        batch, length = real.shape[0], real.shape[1]
        noise = torch.rand(batch, length, model.config.noise_size, generator=generator).to(ctx.device)
        with ctx.autocast():
            fake = self.generator("run", length, noise)
            # discriminator (frozen for this step when it is already far ahead of the generator)
            p_real, p_fake = self.discriminate(real, fake.detach())
        d_loss = -(torch.log(p_real + eps) + torch.log(1 - p_fake + eps)).mean()
        g_adversarial_now = -torch.log(p_fake.detach() + eps).mean()  # -log D(G(z)) before this step
        means = ctx.job.mean_of({"d": float(d_loss.detach()), "g": float(g_adversarial_now)})
        frozen = means["d"] < options.freeze_ratio * means["g"]
        d_opt.zero_grad(set_to_none=True)
        if not frozen or ctx.job.distributed:
            d_loss.backward()  # under DDP always: its reduction must complete; the step is what freezes
        if frozen:
            d_opt.zero_grad(set_to_none=True)
        else:
            torch.nn.utils.clip_grad_norm_(model.discriminator.parameters(), options.clip_norm)
            d_opt.step()
        # generator: feature matching on D's last layer + a little of the adversarial loss
        with ctx.autocast():
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

    def log_now(self, step: int) -> bool:
        return step == self.options.pretrain_steps

    def validate(self, ctx: StepContext, step: int) -> dict[str, float]:
        if self.valid is None:
            return {}
        return {"valid_mse": _valid_mse(self.model, self.valid, self.options.seed)}

    def postfix(self, parts: dict[str, float]) -> dict[str, str]:
        return {k: f"{v:.3f}" for k, v in parts.items() if k in ("mse", "d_loss", "feature_matching")}


def _generator_call(generator: torch.nn.Module, name: str, *args: Any) -> Any:
    return getattr(generator, name)(*args)


def train_crnngan(
    config: CRNNGANConfig,
    options: ContinueTrainOptions,
    train_steps: np.ndarray,
    valid_steps: np.ndarray | None,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    job: Job | None = None,
) -> TrainResult:
    """Train a C-RNN-GAN on scaled step sequences [N, T, F]: MSE pretraining, then the GAN phase."""
    data = np.asarray(train_steps, dtype=np.float32)
    if data.ndim != 3 or data.shape[0] == 0 or data.shape[2] != config.step_size:
        raise ValueError(
            f"training steps must have shape (N, T, {config.step_size}) with N > 0, got {data.shape}"
        )
    if not np.all(np.isfinite(data)):
        raise ValueError("training steps hold NaN or infinity")
    return _fit(CRNNGANFamily(config, options, data, valid_steps), options, out_dir, resume, progress, job)


@torch.no_grad()
def _valid_mse(model: CRNNGAN, valid: torch.Tensor, seed: int) -> float:
    model.eval()
    noise = torch.rand(
        valid.shape[0], valid.shape[1], model.config.noise_size, generator=torch.Generator().manual_seed(seed)
    ).to(valid.device)
    predicted, _ = model.generator.teacher_forced(valid, noise)
    model.train()
    return float(F.mse_loss(predicted, valid))


# ---- command line -----------------------------------------------------------------------------------


def command_line(args: argparse.Namespace) -> str:
    """`musebridge train continue ...` as these arguments spell it (for model cards)."""
    words = ["musebridge", "train", "continue"]
    for key, value in vars(args).items():
        if key in ("handler", "command", "train_model") or value is None or value is False:
            continue
        if TRAINER_DEFAULTS.get(key, object()) == value:  # the shared trainer's options at their default
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


TRAINER_DEFAULTS = {"device": "auto", "grad_accumulation": 1, "precision": "auto", "early_stop": "",
                    "patience": 0}


def run(args: argparse.Namespace) -> int:
    """`musebridge train continue`: load data, train, write the run folder (rank 0) and optionally export."""
    from musebridge.commands.train import start_training_job, trainer_fields
    from musebridge.errors import UserError
    from musebridge.models.training import end_job

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    options = ContinueTrainOptions(
        device=args.device,
        **trainer_fields(args),
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
    job = start_training_job(args.device)
    try:
        return _train_and_export(args, options, dataset, genres, job)
    except ValueError as error:
        raise UserError(str(error)) from error
    finally:
        end_job(job)


def _train_and_export(args: argparse.Namespace, options: ContinueTrainOptions, dataset, genres: list[str],
                      job: Job) -> int:
    from musebridge.errors import UserError

    windows: dict[str, Any] = {"bars": args.window_bars, "meter": "4/4"}
    say = (lambda text: print(text, file=sys.stderr)) if job.is_main else (lambda text: None)
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
                trained = sorted({int(g) for g in train_w.genre})  # .genres names every dataset genre
                names = [train_w.genres[i] for i in trained]
                windows["trained_genres"] = names
                # a genre-conditioned model indexes every dataset genre (its embedding rows); the card
                # of an unconditioned one names the genres it was trained on, and only those
                genres = list(train_w.genres) if args.genre_conditioning else names
                found = np.bincount(np.asarray(valid_w.genre, dtype=int), minlength=len(valid_w.genres))
                warning = validation_warning({train_w.genres[i]: int(found[i]) for i in trained}, "windows")
                if warning:
                    say(warning)
        if len(train_x) == 0:
            raise UserError("no training windows: is the dataset empty for these genres?")
        windows.update(train=int(len(train_x)), valid=int(len(valid_x)), hop_bars=2)
        config = WaveNetConfig(
            residual_channels=args.channels,
            skip_channels=2 * args.channels,
            blocks=args.blocks,
            num_genres=len(genres) if args.genre_conditioning and not args.synthetic else 0,
        )
        say(f"wavenet: {len(train_x)} train / {len(valid_x)} valid windows, receptive field "
            f"{config.receptive_field} steps")
        result = train_wavenet(config, options, train_x, train_g, valid_x, valid_g, args.out_dir,
                               resume=args.resume, progress=progress, job=job)
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
        warning = validation_warning({", ".join(genres) or "all": len(valid_x)}, "sequences")
        if warning:
            say(warning)
        say(f"crnngan: {len(train_x)} train / {len(valid_x)} valid sequences of {args.sequence_length} steps")
        result = train_crnngan(config, options, train_x, valid_x, args.out_dir, resume=args.resume,
                               progress=progress, job=job)
    final = result.history[-1] if result.history else {}
    say("final: " + ", ".join(f"{k}={v:.4g}" for k, v in final.items()))
    if args.export and job.is_main:  # rank 0 alone exports
        training = {
            "command": command_line(args),
            "options": asdict(options),
            "steps": result.step,
            "windows": windows,
            "final": final,
            "processes": job.world_size,  # torchrun ranks; the global batch is --batch-size on any count
        }
        path = export_checkpoint(result.model, args.model, args.export, genres, training)
        card = write_card(path, args.model, result.model.config.to_dict(), genres, training)
        print(f"exported {path} and {card}", file=sys.stderr)
    return 0
