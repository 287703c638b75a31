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


def run_families(rank: int, world: int, port: int, out: str) -> None:
    """One rank running WaveNet, C-RNN-GAN (into its GAN phase) and a full CycleGAN for a few steps each,
    in one process group; rank 0 saves each model's weights as out/<family>.pt."""
    from musebridge.models.continuation.crnngan import CRNNGANConfig
    from musebridge.models.continuation.data import synthetic_steps, synthetic_tokens
    from musebridge.models.continuation.train import ContinueTrainOptions, train_crnngan, train_wavenet
    from musebridge.models.continuation.wavenet import WaveNetConfig
    from musebridge.models.cyclegan.model import CycleGAN, get_config
    from musebridge.models.cyclegan.train import train_cyclegan

    torch.set_num_threads(1)
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    job = start_job("cpu")
    folder = Path(out)
    options = dict(steps=6, batch_size=8, log_every=2, valid_every=3, checkpoint_every=3, device="cpu")
    tokens = synthetic_tokens(32, 32, 0)
    wavenet = train_wavenet(WaveNetConfig(residual_channels=8, skip_channels=16, blocks=1),
                            ContinueTrainOptions(**options), tokens, None, tokens[:8], None,
                            folder / f"wavenet{rank}", progress=False, job=job)
    steps = synthetic_steps(32, 8, 0)
    crnngan = train_crnngan(CRNNGANConfig(generator_size=8, discriminator_size=8),
                            ContinueTrainOptions(**options, pretrain_steps=2, min_length=4), steps, steps[:8],
                            folder / f"crnngan{rank}", progress=False, job=job)
    torch.manual_seed(0)
    cyclegan = CycleGAN(get_config("cpu_small", kind="full", batch_size=4, pool_size=2))
    rng = np.random.default_rng(0)
    rolls = [(rng.random((8, 64, 84)) < p).astype(np.uint8) for p in (0.03, 0.06, 0.1)]
    train_cyclegan(cyclegan, rolls[0], rolls[1], steps=3, seed=1, log=lambda _m: None, ema_decay=0.5,
                   mixed=rolls[2], out_dir=folder / f"cyclegan{rank}", job=job)
    if rank == 0:
        for name, model in (("wavenet", wavenet.model), ("crnngan", crnngan.model), ("cyclegan", cyclegan)):
            torch.save(model.state_dict(), folder / f"{name}.pt")
    end_job(job)


def run_umt(rank: int, world: int, port: int, out: str) -> None:
    """One rank of a universal-translator job (tiny config, continuous bottleneck, augmentation on) for
    4 steps; rank 0 saves the weights and the logged history as out/umt<world>.pt."""
    from musebridge.models.umt.family import train_umt
    from musebridge.models.umt.model import UniversalTranslator, get_config

    torch.set_num_threads(1)
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    job = start_job("cpu")
    torch.manual_seed(0)
    model = UniversalTranslator(get_config("tiny", genres=("folk", "chorale"), learning_rate=3e-3))
    rng = np.random.default_rng(0)
    densities = (("folk", 0.03), ("chorale", 0.08))
    train = {g: (rng.random((16, 64, 84)) < p).astype(np.uint8) for g, p in densities}
    result = train_umt(model, train, 4, 1, log=lambda _m: None, log_every=2, checkpoint_every=2,
                       out_dir=Path(out) / f"umt{world}-rank{rank}", job=job)
    if rank == 0:
        torch.save({"weights": model.state_dict(), "history": result.history}, Path(out) / f"umt{world}.pt")
    end_job(job)
