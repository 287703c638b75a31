"""The universal translator on the shared trainer (models/training): its step (`UMTTrainer`), the family
(`UMTFamily`) and `train_umt`. The data and `musebridge train umt` live in train.py.

Per step: a batch of `batch_per_genre` phrases of every genre, each augmented (augment.py) and encoded
by the shared encoder, and reconstructed (clean) by its own genre's decoder, teacher-forced, binary
cross-entropy per pitch and step; then the domain classifier learns the genre from the (detached)
latent (Mor et al. 2019). With `new_genres` (--add-genre) only those decoders train, against the frozen
encoder.

Under DDP (torchrun) the encoder and the decoders are one wrapped unit and the domain classifier another
(disjoint parameters, one forward each per step; the classifier is frozen while its confusion term
reaches the encoder, as CycleGAN's discriminators are during its generator step). Every rank draws and
augments the whole global batch from the same streams and trains on its share of each genre, so N
processes follow one process's trajectory within float tolerance (the argmax bottleneck's diversity term
is the exception: it is measured on each rank's share).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from musebridge.models.training import Family, Job, Method, StepContext, TrainerOptions, fit
from musebridge.models.umt.augment import augment_batch
from musebridge.models.umt.model import UniversalTranslator


def diversity_loss(q: torch.Tensor) -> torch.Tensor:
    """Negative normalised entropy of the batch's mean code usage, q [B, K, L] (argmax bottleneck only).

    0 when every code is used equally often, -> 1 when one code takes everything (Dieleman et al. 2018)."""
    usage = q.mean(dim=(0, 2))  # [K]
    entropy = -(usage * torch.log(usage + 1e-8)).sum()
    return 1.0 - entropy / float(np.log(q.shape[1]))


class _Autoencoder(torch.nn.Module):
    """The encoder (None when frozen) and the trained decoders (the model's own modules), one DDP unit."""

    def __init__(self, model: UniversalTranslator, genres: Sequence[str], frozen_encoder: bool):
        super().__init__()
        self.encoder = None if frozen_encoder else model.encoder
        self.decoders = torch.nn.ModuleDict({g: model.decoder(g) for g in genres})


def _autoencode(unit: _Autoencoder, inputs: torch.Tensor, targets: torch.Tensor, genres: Sequence[str],
                sizes: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
    """(latent, argmax codes or None, decoder logits per genre) of augmented inputs and clean targets."""
    latent, q = unit.encoder(inputs)
    return latent, q, _decode(unit, latent, targets, genres, sizes)


def _decode(unit: _Autoencoder, latent: torch.Tensor, targets: torch.Tensor, genres: Sequence[str],
            sizes: Sequence[int]) -> list[torch.Tensor]:
    """Teacher-forced logits [B_g, 64, 84] of each genre's rows through its own decoder."""
    pairs = zip(genres, latent.split(list(sizes)), targets.split(list(sizes)), strict=True)
    return [unit.decoders[genre](target, latent_g) for genre, latent_g, target in pairs]


class UMTTrainer:
    """One optimisation step at a time; `new_genres` (--add-genre) get their decoders trained against
    the frozen encoder, else the full model (encoder, all decoders, domain classifier).

    `job` (default: one process) wraps the units for DDP; `shard` takes this rank's rows of a global
    batch (default: all of them); `autocast` is the context the forward passes run in.
    """

    def __init__(self, model: UniversalTranslator, seed: int = 0, new_genres: Sequence[str] = (),
                 augment: bool = True, job: Job | None = None,
                 shard: Callable[[np.ndarray], np.ndarray] = lambda rows: rows,
                 autocast: Callable[[], Any] = contextlib.nullcontext) -> None:
        self.model = model
        self.config = model.config
        self.new_genres = tuple(new_genres)
        self.augment = augment and model.config.augment
        self.rng = np.random.default_rng(seed)
        self.shard, self.autocast = shard, autocast
        self.device = next(model.parameters()).device
        lr = model.config.learning_rate
        wrap = job.wrap if job else (lambda module: module)
        if self.new_genres:
            model.requires_grad_(False)
            parameters = []
            for genre in self.new_genres:
                model.decoder(genre).requires_grad_(True)
                parameters += list(model.decoder(genre).parameters())
            self.optimiser = torch.optim.Adam(parameters, lr=lr)
            self.optimiser_classifier = None
            self.reconstruct = wrap(Method(_Autoencoder(model, self.new_genres, True), _decode))
        else:
            parameters = list(model.encoder.parameters()) + list(model.decoders.parameters())
            self.optimiser = torch.optim.Adam(parameters, lr=lr)
            self.optimiser_classifier = torch.optim.Adam(model.classifier.parameters(), lr=lr)
            self.reconstruct = wrap(Method(_Autoencoder(model, model.genres, False), _autoencode))
            self.classify = wrap(Method(model.classifier, "forward"))
        self.steps_done = 0

    def _inputs(self, rolls: np.ndarray) -> np.ndarray:
        cfg = self.config
        if self.augment:
            rolls = augment_batch(
                rolls, self.rng, segments=cfg.augment_segments, segment_steps=cfg.augment_segment_steps,
                drop=cfg.augment_drop, nudge=cfg.augment_nudge,
            )  # fmt: skip
        return rolls

    def _tensor(self, rolls: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(rolls.astype(np.float32)).to(self.device)

    def step(self, batches: Mapping[str, np.ndarray]) -> dict[str, float]:
        """One step on clean rolls (B, 64, 84) per genre (the global batch: every rank augments all of
        it, in genre order, then trains on its share); returns this rank's losses (floats)."""
        m, cfg = self.model, self.config
        genres = list(batches)
        augmented = {g: self._inputs(batches[g]) for g in genres}  # the whole batch: same stream on all ranks
        mine = {g: self.shard(batches[g]) for g in genres}
        targets = self._tensor(np.concatenate([mine[g] for g in genres]))
        inputs = self._tensor(np.concatenate([self.shard(augmented[g]) for g in genres]))
        sizes = [len(mine[g]) for g in genres]
        if self.new_genres:
            m.encoder.eval()
            with torch.no_grad(), self.autocast():
                latent, q = m.encoder(inputs)
            with self.autocast():
                logits = self.reconstruct(latent, targets, genres, sizes)
        else:
            m.train()
            m.classifier.requires_grad_(False)  # its confusion term reaches the encoder, not itself
            with self.autocast():
                latent, q, logits = self.reconstruct(inputs, targets, genres, sizes)
        reconstruction = torch.zeros((), device=self.device)
        correct = 0.0
        for logits_g, target_g in zip(logits, targets.split(sizes), strict=True):
            bce = F.binary_cross_entropy_with_logits(logits_g.float(), target_g)
            reconstruction = reconstruction + bce * len(target_g)
            correct += float(((logits_g >= 0).float() == target_g).all(-1).float().sum())
        reconstruction = reconstruction / len(targets)
        losses = {
            "reconstruction": float(reconstruction.detach()),
            "frames_exact": correct / targets[..., 0].numel(),
        }
        loss = reconstruction
        if not self.new_genres:
            labels = torch.tensor([cfg.genres.index(g) for g in genres for _ in range(len(mine[g]))],
                                  device=self.device)
            # The paper subtracts lambda * CE(classifier, true genre); on an unbounded latent the encoder
            # then wins by blowing the latent up (CE -> 1e25 in 100 steps here). We use the bounded
            # confusion loss of Tzeng et al. 2015: CE against the uniform distribution over genres,
            # minimal exactly when the classifier cannot tell the genres apart.
            with self.autocast():
                log_p = F.log_softmax(m.classifier(latent).float(), dim=1)
            confusion = -log_p.mean(1).mean()
            loss = loss + cfg.confusion_weight * confusion
            losses["confusion"] = float(confusion.detach())
            if q is not None and cfg.diversity_weight > 0:
                diversity = diversity_loss(q.float())
                loss = loss + cfg.diversity_weight * diversity
                losses["diversity"] = float(diversity.detach())
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        if self.optimiser_classifier is not None:
            # the domain classifier: learn the genre from the latent (the encoder's output held fixed)
            m.classifier.requires_grad_(True)
            with self.autocast():
                logits = self.classify(latent.detach())
            classifier_loss = F.cross_entropy(logits.float(), labels)
            self.optimiser_classifier.zero_grad(set_to_none=True)
            classifier_loss.backward()
            self.optimiser_classifier.step()
            losses["classifier_accuracy"] = float((logits.argmax(1) == labels).float().mean())
        self.steps_done += 1
        return losses


class UMTFamily(Family):
    """UMT's step on the trainer. Batches come from one numpy stream seeded by seed + 1 (as the loop
    before the shared trainer), drawn for the global batch on every rank. `validate` returns the
    valid reconstruction loss (`validation(model)`); `checkpoint(step, valid)` runs on rank 0 after
    each run.pt (every checkpoint_every steps and the last), `best` true when its valid loss is the
    lowest so far (kept in run.pt, so a resumed run keeps choosing among all its checkpoints)."""

    name = "umt"
    title = "universal music translation"
    log_fields = ("step", "seconds", "reconstruction", "frames_exact", "confusion", "diversity",
                  "classifier_accuracy", "valid_reconstruction")

    def __init__(self, model: UniversalTranslator, train: Mapping[str, np.ndarray], seed: int,
                 new_genres: Sequence[str] = (), genres: Sequence[str] | None = None,
                 validation: Callable[[UniversalTranslator], float] | None = None,
                 checkpoint: Callable[[int, float, bool], None] | None = None, checkpoint_every: int = 0,
                 log: Callable[[str], None] = print, log_every: int = 50, steps: int = 0):
        super().__init__()
        self.model, self.train, self.seed = model, train, seed
        self.new_genres = tuple(new_genres)
        self.genres = list(genres or train)
        self.validation, self.checkpoint, self.checkpoint_every = validation, checkpoint, checkpoint_every
        self.log, self.log_every, self.steps = log, log_every, steps
        self.recent: list[dict[str, float]] = []
        self.valid = float("nan")
        self.best = {"step": 0, "valid_reconstruction": float("inf")}

    def build(self, ctx: StepContext) -> None:
        size = self.model.config.batch_per_genre
        if ctx.accumulation != 1:
            raise ValueError("the UMT step takes whole batches: --grad-accumulation 1")
        if size % ctx.job.world_size:
            raise ValueError(f"batch_per_genre {size} must divide into {ctx.job.world_size} processes")
        self.model.to(ctx.device)
        self.job = ctx.job
        self.rng = np.random.default_rng(self.seed + 1)
        self.modules = {"model": self.model}
        self.trainer = UMTTrainer(self.model, seed=self.seed, new_genres=self.new_genres, job=ctx.job,
                                  shard=ctx.shard, autocast=ctx.autocast)
        self.optimizers = {"model": self.trainer.optimiser}
        if self.trainer.optimiser_classifier is not None:
            self.optimizers["classifier"] = self.trainer.optimiser_classifier

    def config_dict(self) -> dict[str, Any]:
        return {**self.model.config.to_dict(), "new_genres": list(self.new_genres)}

    def train_step(self, ctx: StepContext, step: int) -> dict[str, float]:
        size = self.model.config.batch_per_genre
        batches = {g: self.train[g][self.rng.integers(0, len(self.train[g]), size)] for g in self.genres}
        losses = self.trainer.step(batches)
        self.recent = (self.recent + [losses])[-self.log_every :]
        return losses

    def log_now(self, step: int) -> bool:
        return bool(self.checkpoint_every) and step % self.checkpoint_every == 0

    def validate(self, ctx: StepContext, step: int) -> dict[str, float]:
        if self.validation is None:
            return {}
        self.valid = self.validation(self.model)
        return {"valid_reconstruction": self.valid}

    def log_extras(self, step: int) -> dict[str, float]:
        if self.job.is_main and self.recent and (step % self.log_every == 0 or step == self.steps):
            means = recent_means(self.recent)
            self.log(f"step {step}/{self.steps} " + " ".join(f"{k} {v:.4f}" for k, v in means.items()))
        return {}

    def postfix(self, parts: dict[str, float]) -> dict[str, str]:
        return {"reconstruction": f"{parts['reconstruction']:.4f}"}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "augment_rng": self.trainer.rng.bit_generator.state,
                "steps_done": self.trainer.steps_done, "recent": list(self.recent), "valid": self.valid,
                "best": dict(self.best)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.trainer.rng.bit_generator.state = state["augment_rng"]
        self.trainer.steps_done = int(state["steps_done"])
        self.recent, self.valid = list(state["recent"]), float(state["valid"])
        self.best = dict(state["best"])

    def on_checkpoint(self, step: int, out_dir: Path) -> None:
        best = not self.valid >= self.best["valid_reconstruction"]  # NaN (no valid set): every one
        if best:
            self.best = {"step": step, "valid_reconstruction": self.valid}
        if self.checkpoint is not None:
            self.checkpoint(step, self.valid, best)


def recent_means(recent: Sequence[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in recent])) for k in recent[0]} if recent else {}


@dataclass
class UMTResult:
    steps: int
    losses: dict[str, float]  # means of the last log_every steps (this rank's)
    seconds: float
    history: list[dict[str, float]]
    best: dict[str, float]  # {"step", "valid_reconstruction"} of the lowest valid loss (rank 0)


def train_umt(
    model: UniversalTranslator,
    train: Mapping[str, np.ndarray],
    steps: int,
    seed: int = 0,
    *,
    new_genres: Sequence[str] = (),
    genres: Sequence[str] | None = None,
    validation: Callable[[UniversalTranslator], float] | None = None,
    checkpoint: Callable[[int, float, bool], None] | None = None,
    checkpoint_every: int = 0,
    log: Callable[[str], None] = print,
    log_every: int = 50,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    device: str = "cpu",
    precision: str = "auto",
    job: Job | None = None,
) -> UMTResult:
    """`steps` steps on balanced batches (batch_per_genre rolls (N, 64, 84) of every genre in `genres`,
    default all of `train`), through the shared trainer.

    torch is seeded with `seed` before the step's modules are made (the model is the caller's); the
    batches follow numpy streams seeded by seed + 1 (batches) and seed (augmentation).
    `checkpoint(step, valid_reconstruction, best)` is called on rank 0 every `checkpoint_every` steps
    and at the last, after `validation(model)` (NaN without one; best: the lowest so far). The run
    folder `out_dir` (a temporary one when None) gets run.pt (resumable with `resume`),
    train_log.csv/.json and train_curves.png.
    Raises ValueError for a bad option or a run.pt of another model shape.
    """
    family = UMTFamily(model, train, seed, new_genres, genres, validation, checkpoint, checkpoint_every,
                       log, log_every, steps)
    genre_count = len(family.genres)
    options = TrainerOptions(
        steps=steps, global_batch=model.config.batch_per_genre * genre_count, seed=seed, log_every=log_every,
        valid_every=checkpoint_every or steps, checkpoint_every=checkpoint_every or steps, device=device,
        precision=precision, progress=progress, description="train umt", progress_interval=5.0,
    )
    if out_dir is None:
        with tempfile.TemporaryDirectory(prefix="umt-run-") as scratch:
            result = fit(family, options, scratch, resume=False, job=job)
    else:
        result = fit(family, options, out_dir, resume=resume, job=job)
    seconds = result.history[-1]["seconds"] if result.history else 0.0
    return UMTResult(result.step, recent_means(family.recent), seconds, result.history, family.best)
