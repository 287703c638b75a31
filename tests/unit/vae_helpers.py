"""Toy data shared by the MusicVAE unit tests."""

from __future__ import annotations

import numpy as np


def toy_melodies(count: int, bars: int, seed: int = 0) -> np.ndarray:
    """Synthetic melodies: a note-on every 2 or 4 steps on a scale, holds between, some note-offs."""
    rng = np.random.default_rng(seed)
    steps = bars * 16
    out = np.zeros((count, steps), dtype=np.int64)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    for row in range(count):
        stride = int(rng.choice([2, 4]))
        root = int(rng.integers(40, 60))
        for step in range(0, steps, stride):
            out[row, step] = root + int(rng.choice(scale)) - 19
        if rng.random() < 0.5:
            out[row, steps - 2] = 1
    return out
