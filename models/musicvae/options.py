"""MusicVAE optimisation settings: a plain dataclass, importable without torch (the CLI builds
its options from these defaults at start-up)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainOptions:
    """Optimisation settings (the model's shape and loss live in MusicVAEConfig)."""

    steps: int = 4000
    batch_size: int = 64
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-5
    decay_rate: float = 0.9999
    clip_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    valid_every: int = 250
    valid_size: int = 512
    max_transpose: int = 5
    threads: int = 2
    device: str = "auto"
    # the shared trainer's (models/training): see docs/training.md
    accumulation: int = 1
    precision: str = "auto"
    early_stop: str = ""
    patience: int = 0
