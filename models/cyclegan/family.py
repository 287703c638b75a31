"""The CycleGAN on the shared trainer (models/training): its GAN step, the generator moving average, and
`train_cyclegan`. The data and the `musebridge train transfer` command live in train.py.

Per step: the generators (adversarial LSGAN + cycle L1, + the extra discriminators on the mixed set),
then all discriminators on real phrases and pooled fakes (Brunner et al. 2018; Zhu et al. 2017). Under
DDP the two generators are one wrapped unit and the discriminators another (disjoint parameters, one
forward each per step); image pools and the noise on D inputs are per rank (rank 0's are seeded as a
single process's), so several processes follow the same recipe, not the same trajectory.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musebridge.models.cyclegan.model import CycleGAN, ImagePool, half_normal_noise, least_squares
from musebridge.models.training import Family, Job, Method, StepContext, TrainerOptions, fit

RANK_SEED_STRIDE = 1_000_003  # rank r > 0 seeds its pools and noise r strides away from rank 0's


class _Generators(torch.nn.Module):
    """Both generators as one unit (the same modules as the model's), for one DDP wrapper."""

    def __init__(self, model: CycleGAN):
        super().__init__()
        self.generator_ab = model.generator_ab
        self.generator_ba = model.generator_ba


def _generator_pass(generators: _Generators, real_a: torch.Tensor, real_b: torch.Tensor):
    """(fake_b, cycle_a, fake_a, cycle_b) of real batches (B, 1, T, P)."""
    fake_b = generators.generator_ab(real_a)
    cycle_a = generators.generator_ba(fake_b)
    fake_a = generators.generator_ba(real_b)
    cycle_b = generators.generator_ab(fake_a)
    return fake_b, cycle_a, fake_a, cycle_b


class _Discriminators(torch.nn.Module):
    def __init__(self, model: CycleGAN):
        super().__init__()
        self.discriminators = torch.nn.ModuleList(model.discriminators())


class CycleGANTrainer:
    """One optimisation step at a time: generators first, then all discriminators (fakes from the pool).

    `job` (default: one process) wraps the generators and the discriminators for DDP and offsets the
    pools' and the noise's seeds of ranks beyond 0. The noise generator lives on the model's device.
    `autocast` is the context the forward passes run in (the trainer's bf16 autocast on CUDA).
    """

    def __init__(self, model: CycleGAN, total_steps: int, decay_from: float = 0.5, seed: int = 0,
                 job: Job | None = None, autocast: Callable[[], Any] = contextlib.nullcontext):
        cfg = model.config
        self.model = model
        self.config = cfg
        betas = (cfg.beta1, 0.999)
        g_params = itertools.chain(*(m.parameters() for m in model.generators()))
        d_params = itertools.chain(*(m.parameters() for m in model.discriminators()))
        self.optimiser_g = torch.optim.Adam(g_params, lr=cfg.learning_rate, betas=betas)
        self.optimiser_d = torch.optim.Adam(d_params, lr=cfg.learning_rate, betas=betas)
        decay_start = int(total_steps * decay_from)

        def factor(step: int) -> float:  # constant, then linear decay to 0 (the paper's schedule)
            if step < decay_start:
                return 1.0
            return max(0.0, (total_steps - step) / max(1, total_steps - decay_start))

        self.schedules = [
            torch.optim.lr_scheduler.LambdaLR(self.optimiser_g, factor),
            torch.optim.lr_scheduler.LambdaLR(self.optimiser_d, factor),
        ]
        offset = RANK_SEED_STRIDE * (job.rank if job else 0)
        self.pool_a = ImagePool(cfg.pool_size, random.Random(seed + offset))
        self.pool_b = ImagePool(cfg.pool_size, random.Random(seed + 1 + offset))
        device = next(model.parameters()).device
        self.noise = torch.Generator(device=device).manual_seed(seed + 2 + offset)
        self.steps_done = 0
        self.autocast = autocast
        wrap = job.wrap if job else (lambda module: module)
        self.generator_pass = wrap(Method(_Generators(model), _generator_pass))
        self.discriminator_pass = wrap(Method(_Discriminators(model), lambda _unit, *a: self._d_losses(*a)))

    def _noisy(self, roll: torch.Tensor) -> torch.Tensor:
        return roll + half_normal_noise(roll, self.config.sigma_d, self.noise)

    def _set_discriminators_trainable(self, trainable: bool) -> None:
        for module in self.model.discriminators():
            module.requires_grad_(trainable)

    def step(
        self, real_a: torch.Tensor, real_b: torch.Tensor, mixed: torch.Tensor | None = None
    ) -> dict[str, float]:
        """One step on batches (B, 1, T, P) of A, B and the mixed set M; returns the losses."""
        m, cfg = self.model, self.config
        self.model.train()
        # Generators: adversarial (LSGAN) + cycle L1 (+ extra discriminators, as the paper's text says).
        self._set_discriminators_trainable(False)
        with self.autocast():
            fake_b, cycle_a, fake_a, cycle_b = self.generator_pass(real_a, real_b)
            adversarial = least_squares(m.discriminator_b(self._noisy(fake_b)), 1.0) + least_squares(
                m.discriminator_a(self._noisy(fake_a)), 1.0
            )
            cycle = cfg.cycle_weight * (
                torch.mean(torch.abs(cycle_a - real_a)) + torch.mean(torch.abs(cycle_b - real_b))
            )
            g_loss = adversarial + cycle
            mixed_adversarial = torch.zeros((), device=real_a.device)
            if m.uses_mixed and cfg.mixed_generator_loss:
                mixed_adversarial = cfg.mixed_weight * (
                    least_squares(m.discriminator_b_mixed(self._noisy(fake_b)), 1.0)
                    + least_squares(m.discriminator_a_mixed(self._noisy(fake_a)), 1.0)
                )
                g_loss = g_loss + mixed_adversarial
        self.optimiser_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimiser_g.step()

        # Discriminators: real -> 1, pooled fakes -> 0; the extra ones take M as real.
        self._set_discriminators_trainable(True)
        if m.uses_mixed and mixed is None:
            raise ValueError("this CycleGAN has extra discriminators: pass a mixed batch")
        pooled_a = self.pool_a.query(fake_a.detach())
        pooled_b = self.pool_b.query(fake_b.detach())
        with self.autocast():
            d_loss, d_mixed = self.discriminator_pass(real_a, real_b, pooled_a, pooled_b, mixed)
        self.optimiser_d.zero_grad(set_to_none=True)
        (d_loss + d_mixed).backward()
        self.optimiser_d.step()
        for schedule in self.schedules:
            schedule.step()
        self.steps_done += 1
        return {
            "g_adversarial": adversarial.item(),
            "g_cycle": cycle.item(),
            "g_mixed": mixed_adversarial.item(),
            "d": d_loss.item(),
            "d_mixed": d_mixed.item(),
        }

    def _d_losses(self, real_a, real_b, pooled_a, pooled_b, mixed) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        d_loss = self._d_loss(m.discriminator_a, real_a, pooled_a) + self._d_loss(
            m.discriminator_b, real_b, pooled_b
        )
        d_mixed = torch.zeros((), device=real_a.device)
        if m.uses_mixed:
            d_mixed = self.config.mixed_weight * (
                self._d_loss(m.discriminator_a_mixed, mixed, pooled_a)
                + self._d_loss(m.discriminator_b_mixed, mixed, pooled_b)
            )
        return d_loss, d_mixed

    def _d_loss(self, discriminator: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real_loss = least_squares(discriminator(self._noisy(real)), 1.0)
        fake_loss = least_squares(discriminator(self._noisy(fake)), 0.0)
        return 0.5 * (real_loss + fake_loss)

    def state_dict(self) -> dict[str, Any]:
        """Pools (items and random streams) and the noise stream, for an exact resume."""
        return {
            "pools": [{"items": list(p.items), "rng": p.rng.getstate()} for p in (self.pool_a, self.pool_b)],
            "noise": self.noise.get_state(),
            "steps_done": self.steps_done,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for pool, saved in zip((self.pool_a, self.pool_b), state["pools"], strict=True):
            pool.items = [t.to(self.noise.device) for t in saved["items"]]
            pool.rng.setstate(_tuples(saved["rng"]))
        self.noise.set_state(state["noise"])
        self.steps_done = int(state["steps_done"])


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


class GeneratorAverage:
    """Exponential moving average of both generators' weights (not in the paper; a GAN stabiliser).

    Checkpoints 100 steps apart swing widely in transfer strength; an average of the recent weights
    (Polyak averaging, Yazici et al. 2019) follows the trajectory without its oscillation. The decay
    warms up as min(decay, (1 + step) / (10 + step)) so the first steps do not pin it to the init.
    """

    def __init__(self, model: CycleGAN, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = model
        self.shadow = {name: self._state(name) for name in ("generator_ab", "generator_ba")}
        self.updates = 0

    def _state(self, name: str) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in getattr(self.model, name).state_dict().items()}

    @torch.no_grad()
    def update(self) -> None:
        """Blend the live generator weights into the average (call after each optimiser step)."""
        self.updates += 1
        decay = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for name, shadow in self.shadow.items():
            for key, value in getattr(self.model, name).state_dict().items():
                if value.dtype.is_floating_point:
                    shadow[key].mul_(decay).add_(value.detach(), alpha=1.0 - decay)
                else:
                    shadow[key].copy_(value)

    def swap(self) -> None:
        """Exchange the live and the averaged generator weights (call twice to undo)."""
        for name, shadow in self.shadow.items():
            live = self._state(name)
            getattr(self.model, name).load_state_dict(shadow)
            self.shadow[name] = live


def _batch(rolls: np.ndarray, index: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(rolls[index].astype(np.float32)).unsqueeze(1).to(device)  # (B, 1, T, P)


class CycleGANFamily(Family):
    """CycleGAN's step on the trainer. Batches come from one numpy stream seeded by `seed` (as before
    the shared trainer), drawn for the global batch on every rank, each rank training on its share."""

    name = "cyclegan"
    title = "CycleGAN genre transfer"

    def __init__(self, model: CycleGAN, train_a: np.ndarray, train_b: np.ndarray, mixed: np.ndarray,
                 steps: int, seed: int, ema_decay: float, checkpoint: Callable[[int], None] | None,
                 checkpoint_every: int, log: Callable[[str], None], log_every: int):
        super().__init__()
        self.model, self.train_a, self.train_b, self.mixed = model, train_a, train_b, mixed
        self.steps, self.seed, self.ema_decay = steps, seed, ema_decay
        self.checkpoint, self.checkpoint_every = checkpoint, checkpoint_every
        self.log, self.log_every = log, log_every
        self.recent: list[dict[str, float]] = []

    def build(self, ctx: StepContext) -> None:
        if ctx.accumulation != 1:
            raise ValueError("the CycleGAN step takes whole batches: --grad-accumulation 1")
        self.model.to(ctx.device)
        self.device = ctx.device
        self.rng = np.random.default_rng(self.seed)
        self.job = ctx.job
        self.modules = {"model": self.model}
        self.trainer = CycleGANTrainer(self.model, self.steps, seed=self.seed, job=ctx.job,
                                       autocast=ctx.autocast)
        # after the DDP wrap, which gave every rank rank 0's weights
        self.average = GeneratorAverage(self.model, self.ema_decay) if self.ema_decay > 0 else None
        self.optimizers = {"g": self.trainer.optimiser_g, "d": self.trainer.optimiser_d}
        self.schedulers = {"g": self.trainer.schedules[0], "d": self.trainer.schedules[1]}

    def config_dict(self) -> dict[str, Any]:
        return self.model.config.to_dict()

    def train_step(self, ctx: StepContext, step: int) -> dict[str, float]:
        size = ctx.global_batch
        index_a = self.rng.integers(0, len(self.train_a), size)
        index_b = self.rng.integers(0, len(self.train_b), size)
        index_m = self.rng.integers(0, len(self.mixed), size) if self.model.uses_mixed else None
        batch_a = _batch(self.train_a, ctx.shard(index_a), self.device)
        batch_b = _batch(self.train_b, ctx.shard(index_b), self.device)
        batch_m = _batch(self.mixed, ctx.shard(index_m), self.device) if index_m is not None else None
        losses = self.trainer.step(batch_a, batch_b, batch_m)
        if self.average is not None:
            self.average.update()
        self.recent = (self.recent + [losses])[-self.log_every :]
        return losses

    def log_extras(self, step: int) -> dict[str, float]:
        if self.job.is_main and self.recent:
            means = {k: float(np.mean([r[k] for r in self.recent])) for k in self.recent[0]}
            self.log(f"step {step}/{self.steps} " + " ".join(f"{k} {v:.4f}" for k, v in means.items()))
        return {}

    def postfix(self, parts: dict[str, float]) -> dict[str, str]:
        return {"cycle": f"{parts['g_cycle']:.3f}", "d": f"{parts['d']:.3f}"}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"rng": self.rng.bit_generator.state, "trainer": self.trainer.state_dict(),
                                 "recent": list(self.recent)}
        if self.average is not None:
            state["average"] = {"shadow": self.average.shadow, "updates": self.average.updates}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.trainer.load_state_dict(state["trainer"])
        self.recent = list(state["recent"])
        if self.average is not None and "average" in state:
            self.average.shadow = state["average"]["shadow"]
            self.average.updates = int(state["average"]["updates"])

    def on_checkpoint(self, step: int, out_dir: Path) -> None:
        if self.checkpoint is None or not self.checkpoint_every or step % self.checkpoint_every:
            return
        if self.average is not None:
            self.average.swap()  # save the averaged generators, then train on with the live ones
        self.checkpoint(step)
        if self.average is not None:
            self.average.swap()

    def finish(self) -> None:
        if self.average is not None:
            self.average.swap()  # the trained model is the averaged one


def train_cyclegan(
    model: CycleGAN,
    train_a: np.ndarray,
    train_b: np.ndarray,
    steps: int,
    seed: int = 0,
    log: Callable[[str], None] = print,
    log_every: int = 50,
    checkpoint: Callable[[int], None] | None = None,
    checkpoint_every: int = 0,
    ema_decay: float = 0.0,
    mixed: np.ndarray | None = None,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    device: str = "cpu",
    precision: str = "auto",
    job: Job | None = None,
) -> dict[str, float]:
    """Train for `steps` batches on rolls (N, T, P) of A and B (balanced by the caller).

    The mixed set M of the extra discriminators is `mixed` when given (the "full" model: A, B and
    other genres), else A u B (the "partial" model). The global batch is model.config.batch_size.

    With `ema_decay` > 0 the checkpoints and the returned model hold the moving average of the
    generator weights (GeneratorAverage), not the last weights. `checkpoint(step)` is called on rank 0
    every `checkpoint_every` steps; the run folder `out_dir` (a temporary one when None) gets run.pt
    (resumable with `resume`), train_log.csv/.json and train_curves.png. Returns the mean losses of the
    last `log_every` steps (this rank's).
    """
    if mixed is None:
        mixed = np.concatenate([train_a, train_b])
    family = CycleGANFamily(model, train_a, train_b, mixed, steps, seed, ema_decay, checkpoint,
                            checkpoint_every, log, log_every)
    options = TrainerOptions(
        steps=steps, global_batch=model.config.batch_size, seed=seed, log_every=log_every,
        valid_every=steps, checkpoint_every=checkpoint_every or steps, device=device, precision=precision,
        progress=progress, description="train transfer", progress_interval=5.0,
    )
    family.seed_before_build = True  # torch.manual_seed(seed) after the caller built the model, as before
    if out_dir is None:
        with tempfile.TemporaryDirectory(prefix="cyclegan-run-") as scratch:
            fit(family, options, scratch, job=job)
    else:
        fit(family, options, out_dir, resume=resume, job=job)
    recent = family.recent
    return {k: float(np.mean([r[k] for r in recent])) for k in recent[0]} if recent else {}
