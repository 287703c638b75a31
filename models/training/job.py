"""The training job: one process, or one rank of a `torchrun` job (PyTorch DDP).

`start_job` reads the environment torchrun sets (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR/PORT) and
initialises `torch.distributed` with NCCL on CUDA and gloo otherwise. Without torchrun (no WORLD_SIZE,
or WORLD_SIZE=1) nothing distributed happens and the job is one process, exactly as before DDP.

Collectives used by the trainer (`mean_of`, `any_of`, `gather_objects`, `broadcast_object`) are
no-ops on one process, so family step functions call them unconditionally.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch

DEVICES = ("auto", "cpu", "cuda", "mps")


def choose_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' -> CUDA when present (the local rank's GPU), else Apple MPS, else CPU; other names as given.

    Raises ValueError for an unknown name or a device this machine does not have.
    """
    if name not in DEVICES and not name.startswith("cuda:"):
        raise ValueError(f"unknown device {name!r} (choose from {', '.join(DEVICES)})")
    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    if name.startswith("cuda"):
        if not cuda:
            raise ValueError("--device cuda asked for, but this machine has no CUDA device")
        if name == "cuda":
            return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        return torch.device(name)
    if name == "mps" and not mps:
        raise ValueError("--device mps asked for, but MPS is not available here")
    return torch.device(name)


@dataclass
class Job:
    """Where this process stands in the job. `rank` 0 is the only one that writes files."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    backend: str = ""  # "" on one process, else "gloo" or "nccl"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    devices: list[str] = field(default_factory=list)  # device of every rank, rank order

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self, global_batch: int, accumulation: int) -> str:
        """The run's first log line: world size, backend, device per rank, global batch."""
        per_rank = global_batch // (self.world_size * accumulation)
        split = f"{per_rank} per rank x {self.world_size} rank(s) x {accumulation} accumulation step(s)"
        if not self.distributed:
            return (f"job: 1 process (no torchrun), device {self.device}, "
                    f"global batch {global_batch} ({split})")
        devices = ", ".join(f"rank {r} {d}" for r, d in enumerate(self.devices))
        return (
            f"job: world size {self.world_size}, backend {self.backend}, {devices}, "
            f"global batch {global_batch} ({split})"
        )

    # -- collectives (no-ops on one process) --------------------------------------------------------
    def mean_of(self, values: Mapping[str, float]) -> dict[str, float]:
        """The mean over ranks of each scalar (keys in sorted order on every rank)."""
        if not self.distributed or not values:
            return dict(values)
        keys = sorted(values)
        tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self._comm_device)
        torch.distributed.all_reduce(tensor)
        return {k: float(v) / self.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}

    def any_of(self, flag: bool) -> bool:
        """True when any rank passes True (so that every rank takes the same branch)."""
        if not self.distributed:
            return flag
        tensor = torch.tensor([1.0 if flag else 0.0], device=self._comm_device)
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return bool(tensor.item() > 0)

    def gather_objects(self, value: Any) -> list[Any]:
        """Every rank's `value`, rank order (picklable objects)."""
        if not self.distributed:
            return [value]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, value)
        return out

    def broadcast_object(self, value: Any) -> Any:
        """Rank 0's `value` on every rank."""
        if not self.distributed:
            return value
        box = [value if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0, device=self._comm_device)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")

    # -- models ---------------------------------------------------------------------------------------
    def wrap(self, module: torch.nn.Module, find_unused_parameters: bool = True) -> torch.nn.Module:
        """The module in DistributedDataParallel on several ranks (rank 0's weights broadcast); as is on one.

        find_unused_parameters is on by default: a model may hold weights its loss never reaches (the
        WaveNet's last layer has a residual 1x1 convolution whose output no later layer reads), and DDP
        without it waits for their gradients and fails. It costs one graph walk per forward.
        A module with no trainable parameter is never wrapped (DDP refuses it).
        """
        if not self.distributed or not any(p.requires_grad for p in module.parameters()):
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused_parameters)

    @contextlib.contextmanager
    def no_sync(self, module: torch.nn.Module, skip: bool) -> Iterator[None]:
        """DDP's no_sync (gradients kept local) when `skip`: the micro-batches before the last one."""
        if skip and hasattr(module, "no_sync"):
            with module.no_sync():
                yield
        else:
            yield


def start_job(device: str = "auto", environ: Mapping[str, str] | None = None) -> Job:
    """This process's Job, from torchrun's environment; initialises torch.distributed when WORLD_SIZE > 1.

    Raises ValueError for a device this machine lacks, or MPS under several processes (no backend
    there: train on one process).
    """
    env = os.environ if environ is None else environ
    world_size = int(env.get("WORLD_SIZE", "1") or 1)
    rank = int(env.get("RANK", "0") or 0)
    local_rank = int(env.get("LOCAL_RANK", "0") or 0)
    chosen = choose_device(device, local_rank)
    if world_size <= 1:
        return Job(device=chosen, devices=[str(chosen)])
    if chosen.type == "mps":
        raise ValueError("several processes on MPS are not supported by torch.distributed: run one process")
    backend = "nccl" if chosen.type == "cuda" else "gloo"
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    job = Job(world_size, rank, local_rank, backend, chosen)
    job.devices = [str(d) for d in job.gather_objects(str(chosen))]
    return job


def end_job(job: Job) -> None:
    """Leave the process group (after the last collective).

    The ranks meet at a barrier first: a rank that tore gloo down while its peer still had the pair
    open died with SIGABRT ("terminate called without an active exception") in about one run of three.
    On gloo the barrier is monitored (60 s), so a rank that failed alone does not wait forever.
    """
    if not (job.distributed and torch.distributed.is_initialized()):
        return
    try:
        if job.backend == "gloo":
            torch.distributed.monitored_barrier(timeout=timedelta(seconds=60))
        else:
            torch.distributed.barrier()
    except RuntimeError as error:  # a peer is gone: leave anyway, saying so
        print(f"rank {job.rank}: the other ranks did not reach the end ({error})", file=sys.stderr)
    torch.distributed.destroy_process_group()
