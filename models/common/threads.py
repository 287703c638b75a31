"""CPU thread count for inference: the shipped models are small, and on shared cores more torch
intra-op threads only contend (two threads made a 2-bar continuation ~30x slower on a busy 2-core VM)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def cpu_threads(device: torch.device, count: int = 1) -> Iterator[None]:
    """Run the block with `count` torch threads when on CPU (restored afterwards).

    count <= 0, or a GPU device, leaves torch's setting as it is.
    """
    if device.type != "cpu" or count <= 0:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
