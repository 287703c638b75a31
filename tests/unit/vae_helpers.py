"""Toy data shared by the MusicVAE unit tests."""

from __future__ import annotations

from pathlib import Path

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


def tiny_dataset(path: Path) -> Path:
    """A built dataset .npz of at least 12 one-line 8-bar folk tunes covering train, valid and test."""
    from musebridge.models.data.dataset import split_of
    from musebridge.models.data.tunes import Tune, make_bars, make_notes, pack_tunes

    tunes = []
    rng = np.random.default_rng(0)
    index = 0
    while {split_of(t.source_id) for t in tunes} != {"train", "valid", "test"} or len(tunes) < 12:
        rows = [(int(rng.integers(60, 72)), 80, beat * 0.5, 0.5) for beat in range(64)]
        tunes.append(Tune(source_id=f"toy/{index}", collection="toy", genre="folk", notes=make_notes(rows),
                          bars=make_bars([(bar * 4.0, 4.0, 4, 4) for bar in range(8)])))
        index += 1
    np.savez(path, **pack_tunes(tunes, {}))
    return path
