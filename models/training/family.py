"""What a model family gives the trainer: its modules, optimizers and schedulers, and one step function.

A family subclasses `Family`. The trainer seeds, builds (`build`), resumes, wraps for DDP (`wrap`), then
calls `train_step(ctx, step)` once per optimisation step; a GAN runs its several optimizers (or freezes
its discriminator) inside that one call. `StepContext` is what a step function may use: the seeded
random streams of the step, this rank's share of a global batch split into micro-batches, bf16
autocast on CUDA, DDP's no_sync, and means over ranks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musebridge.models.training.job import Job
from musebridge.models.training.records import plot_history


class Method(torch.nn.Module):
    """Calls one named method of a model (or `call(model, ...)`) through forward(), so that DDP's hooks
    see it: DDP synchronises the gradients of what ran through its forward. Give each set of parameters
    one wrapper (two DDP wrappers of the same parameters would both reduce them), and follow each
    forward by at most one backward. State dict keys gain a `model.` prefix."""

    def __init__(self, model: torch.nn.Module, call: str | Callable[..., Any]):
        super().__init__()
        self.model = model
        self.call = call

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if callable(self.call):
            return self.call(self.model, *args, **kwargs)
        return getattr(self.model, self.call)(*args, **kwargs)


class StepContext:
    """The trainer's services to a step function (one per run, shared by every step)."""

    def __init__(self, job: Job, seed: int, global_batch: int, accumulation: int, precision: str):
        if global_batch % (job.world_size * accumulation):
            raise ValueError(
                f"the global batch {global_batch} must divide into {job.world_size} rank(s) x "
                f"{accumulation} accumulation step(s)"
            )
        self.job = job
        self.seed = seed
        self.global_batch = global_batch
        self.accumulation = accumulation
        self.bf16 = precision == "bf16" or (precision == "auto" and job.device.type == "cuda")
        if self.bf16 and job.device.type != "cuda":
            raise ValueError("bf16 autocast is for CUDA devices; use --precision fp32 here")

    @property
    def device(self) -> torch.device:
        return self.job.device

    def step_rngs(self, step: int, device: torch.device | None = None) -> tuple[np.random.Generator,
                                                                                torch.Generator]:
        """(numpy, torch) generators of this step: numpy seeded by (seed, step), the same on every rank
        (it draws the global batch); torch by seed * 1,000,003 + step, offset per rank beyond rank 0
        (it draws per-sample noise, which must differ between ranks)."""
        rng = np.random.default_rng([self.seed, step])
        generator = torch.Generator(device=device or torch.device("cpu"))
        generator.manual_seed(self.seed * 1_000_003 + step + self.job.rank * 1_000_000_007)
        return rng, generator

    def shard(self, array: Any) -> Any:
        """This rank's contiguous rows of a global batch (rows [rank * n, (rank + 1) * n))."""
        if not self.job.distributed:
            return array
        size = len(array) // self.job.world_size
        return array[self.job.rank * size : (self.job.rank + 1) * size]

    def micro_batches(self, *arrays: Any) -> list[tuple[Any, ...]]:
        """This rank's share of aligned global-batch arrays, split into `accumulation` micro-batches."""
        shards = [self.shard(a) for a in arrays]
        if self.accumulation == 1:
            return [tuple(shards)]
        size = len(shards[0]) // self.accumulation
        return [tuple(s[k * size : (k + 1) * size] for s in shards) for k in range(self.accumulation)]

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA (the default there), nothing elsewhere."""
        if self.bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def accumulate(
        self, module: torch.nn.Module, micro: Sequence[tuple[Any, ...]],
        forward: Callable[..., dict[str, torch.Tensor]],
    ) -> dict[str, float]:
        """forward(module, *micro_batch) -> parts with a "loss"; backward of loss / K for each of the K
        micro-batches, gradients all-reduced once (DDP no_sync on the others). Returns the parts'
        means over the micro-batches as floats (the caller then clips and steps its optimizer)."""
        count = len(micro)
        totals: dict[str, float] = {}
        for index, batch in enumerate(micro):
            with self.job.no_sync(module, index < count - 1):
                with self.autocast():
                    parts = forward(module, *batch)
                loss = parts["loss"] if count == 1 else parts["loss"] / count
                loss.backward()
            for key, value in parts.items():
                number = float(value.detach() if torch.is_tensor(value) else value)
                totals[key] = totals.get(key, 0.0) + number
        return {k: v / count for k, v in totals.items()}


class Family:
    """Base of a model family on the trainer. Subclasses set `modules`, `optimizers` (and optionally
    `schedulers`) in build(), and implement train_step()."""

    name = "model"
    title = "training curves"
    log_fields: Sequence[str] = ()  # CSV columns first in this order (others follow)
    seed_before_build = True  # torch.manual_seed(seed) right before build(): the init follows the seed
    start_step = 0  # where a fresh run starts (build may set it, e.g. when fine-tuning a trained model)

    def __init__(self) -> None:
        self.modules: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}

    # -- set up ---------------------------------------------------------------------------------------
    def build(self, ctx: StepContext) -> None:
        """Create modules (on ctx.device), optimizers and schedulers."""
        raise NotImplementedError

    def config_dict(self) -> dict[str, Any]:
        """The model shape, compared on resume (a run of another shape is refused)."""
        return {}

    def wrap(self, job: Job) -> None:
        """Wrap what the step function calls in DDP (job.wrap). Called after a resume, before step 1."""

    # -- per step -------------------------------------------------------------------------------------
    def train_step(self, ctx: StepContext, step: int) -> dict[str, float]:
        """One optimisation step (`step` counts from 0); returns this rank's scalars to log."""
        raise NotImplementedError

    def validate(self, ctx: StepContext, step: int) -> dict[str, float]:
        """Validation scalars, named valid_* (run on rank 0 only; {} when there is no valid set)."""
        return {}

    def log_extras(self, step: int) -> dict[str, float]:
        """Scalars added to a log row as they are at `step` (not averaged), e.g. the learning rate."""
        return {}

    def log_now(self, step: int) -> bool:
        """An extra log row at this step (besides every log_every steps and the last)."""
        return False

    def postfix(self, parts: dict[str, float]) -> dict[str, str]:
        """What the progress bar shows after each step."""
        return {}

    # -- state ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The family's own state for run.pt (pools, averages, its random streams)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def on_checkpoint(self, step: int, out_dir: Path) -> None:
        """After run.pt is written at `step` (rank 0): e.g. export a per-step checkpoint."""

    def finish(self) -> None:
        """After the last step (e.g. keep the averaged weights); modules are put in eval mode after."""

    def plot(self, history: Sequence[dict[str, float]], path: Path) -> None:
        plot_history(history, path, self.title)
