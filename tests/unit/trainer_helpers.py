"""A toy family for the shared trainer's tests, and a runner of 1- or N-process (gloo) jobs."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import numpy as np
import torch

from musebridge.models.training import Family, Method, StepContext, TrainerOptions, end_job, fit, start_job


class ToyNet(torch.nn.Module):
    def __init__(self, dropout: float):
        super().__init__()
        self.hidden = torch.nn.Linear(8, 16)
        self.dropout = torch.nn.Dropout(dropout)
        self.out = torch.nn.Linear(16, 1)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        predicted = self.out(self.dropout(torch.tanh(self.hidden(x)))).squeeze(-1)
        return {"loss": torch.mean((predicted - y) ** 2)}


class ToyFamily(Family):
    """Regression y = sin(x . w): Adam with a step schedule, optional dropout (global random stream),
    noise from the step's torch generator; `die_at` kills the process (SIGKILL) before that step."""

    name = "toy"

    def __init__(self, dropout: float = 0.0, noise: float = 0.0, die_at: int = -1):
        super().__init__()
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(256, 8)).astype(np.float32)
        self.y = np.sin(self.x @ rng.normal(size=8)).astype(np.float32)
        self.dropout, self.noise, self.die_at = dropout, noise, die_at

    def build(self, ctx: StepContext) -> None:
        self.net = ToyNet(self.dropout)
        self.modules = {"net": self.net}
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-2)
        self.optimizers = {"adam": self.optimizer}
        self.schedulers = {"lr": torch.optim.lr_scheduler.StepLR(self.optimizer, 3, gamma=0.5)}

    def config_dict(self) -> dict:
        return {"dropout": self.dropout}

    def wrap(self, job) -> None:
        self.loss = job.wrap(Method(self.net, "loss"))

    def train_step(self, ctx: StepContext, step: int) -> dict[str, float]:
        if step == self.die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        rng, generator = ctx.step_rngs(step)
        index = rng.integers(0, len(self.x), size=ctx.global_batch)
        x, y = self.x[index], self.y[index]

        def forward(loss, xb, yb):
            xt = torch.as_tensor(xb)
            if self.noise:
                xt = xt + self.noise * torch.randn(xt.shape, generator=generator)
            return loss(xt, torch.as_tensor(yb))

        self.optimizer.zero_grad(set_to_none=True)
        parts = ctx.accumulate(self.loss, ctx.micro_batches(x, y), forward)
        self.optimizer.step()
        self.schedulers["lr"].step()
        return parts

    def validate(self, ctx: StepContext, step: int) -> dict[str, float]:
        with torch.no_grad():
            loss = self.net.loss(torch.as_tensor(self.x[:64]), torch.as_tensor(self.y[:64]))["loss"]
        return {"valid_loss": float(loss)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_rank(rank: int, world: int, port: int, out: str, family_kwargs: dict, options: dict,
             resume: bool = False) -> None:
    """One rank of a job: torchrun's environment, then fit; rank r trains into out/rank<r> (only rank 0
    may write there) and saves its final weights as out/weights<r>.pt for the test to compare."""
    torch.set_num_threads(1)
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    job = start_job("cpu")
    family = ToyFamily(**family_kwargs)
    result = fit(family, TrainerOptions(**options), Path(out) / f"rank{rank}", resume=resume, job=job)
    saved = {"weights": family.net.state_dict(), "history": result.history}
    torch.save(saved, Path(out) / f"weights{rank}.pt")
    end_job(job)
