"""The genre classifier of Brunner et al. 2018, used only to evaluate transfer (never trained on transfers).

Roll (B, 1, 64, 84) binary -> one logit per genre (the paper: two, genre A and genre B; the universal
translator's judge: four). Inputs are mapped to x * 2 - 1 first.
Convs (kernel = stride, no padding): [1x12] -> 64 (one per octave), [4x1] -> 128 + IN,
[2x1] -> 256 + IN, [8x1] -> 512 + IN, [1x7] -> genres; LeakyReLU 0.2 between.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musebridge.models.common.checkpoint_io import read_checkpoint


@dataclass(frozen=True)
class ClassifierConfig:
    """Classifier size and training settings; sigma_c is Gaussian noise on training inputs (paper: 0)."""

    steps: int = 64
    pitches: int = 84
    channels: int = 64
    sigma_c: float = 0.0
    learning_rate: float = 2e-4
    beta1: float = 0.5
    batch_size: int = 64
    genres: int = 2

    def __post_init__(self) -> None:
        if self.steps != 64 or self.pitches != 84:
            raise ValueError("the paper's classifier expects 64 x 84 rolls")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ClassifierConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class GenreClassifier(nn.Module):
    """Genre classifier: roll (B, 1, 64, 84) in [0, 1] -> logits (B, genres); index 0 = genre A."""

    def __init__(self, config: ClassifierConfig | None = None):
        super().__init__()
        self.config = config or ClassifierConfig()
        c = self.config.channels
        self.layers = nn.Sequential(
            nn.Conv2d(1, c, (1, 12), stride=(1, 12)),  # (B, c, 64, 7)
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c, 2 * c, (4, 1), stride=(4, 1)),  # (B, 2c, 16, 7)
            nn.InstanceNorm2d(2 * c, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * c, 4 * c, (2, 1), stride=(2, 1)),  # (B, 4c, 8, 7)
            nn.InstanceNorm2d(4 * c, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * c, 8 * c, (8, 1), stride=(8, 1)),  # (B, 8c, 1, 7)
            nn.InstanceNorm2d(8 * c, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(8 * c, self.config.genres, (1, 7), stride=(1, 7)),  # (B, genres, 1, 1)
        )

    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        return self.layers(roll * 2.0 - 1.0).flatten(1)  # (B, genres)

    @torch.no_grad()
    def probabilities(self, rolls: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Softmax (N, genres) of rolls (N, 1, 64, 84), binarised at 0.5 first, in eval mode."""
        was_training = self.training
        self.eval()
        out = [
            F.softmax(self((rolls[i : i + batch_size] >= 0.5).float()), dim=1)
            for i in range(0, rolls.shape[0], batch_size)
        ]
        self.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, self.config.genres)


def accuracy(model: GenreClassifier, *rolls_by_genre: torch.Tensor) -> float:
    """Fraction of the rolls of genre i (N_i, 1, 64, 84) classified i, over all sets together."""
    right = sum(int((model.probabilities(r).argmax(1) == i).sum()) for i, r in enumerate(rolls_by_genre))
    total = sum(r.shape[0] for r in rolls_by_genre)
    return right / total if total else float("nan")


def train_classifier(
    model: GenreClassifier,
    train_a: np.ndarray,
    train_b: np.ndarray,
    epochs: int,
    seed: int = 0,
    valid: tuple[np.ndarray, np.ndarray] | None = None,
    log: object = print,
) -> dict[str, float]:
    """Train on rolls (N, 64, 84) of A (label 0) and B (label 1); keep the weights of the best valid epoch.

    Returns {"epochs", "train_loss", "valid_accuracy"} of the kept weights.
    """
    return train_classifier_sets(model, [train_a, train_b], epochs, seed, valid, log)


def train_classifier_sets(
    model: GenreClassifier,
    train: list[np.ndarray],
    epochs: int,
    seed: int = 0,
    valid: tuple[np.ndarray, ...] | list[np.ndarray] | None = None,
    log: object = print,
) -> dict[str, float]:
    """train_classifier for any number of genres: train[i] (N_i, 64, 84) has label i."""
    cfg = model.config
    if len(train) != cfg.genres:
        raise ValueError(f"the classifier has {cfg.genres} genres, got {len(train)} training sets")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=(cfg.beta1, 0.999))
    rolls = np.concatenate(train).astype(np.float32)
    labels = np.concatenate([np.full(len(t), i) for i, t in enumerate(train)]).astype(np.int64)
    valid_t = None
    if valid is not None:
        valid_t = tuple(torch.from_numpy(v.astype(np.float32)).unsqueeze(1) for v in valid)
    best = {"epochs": 0.0, "train_loss": float("nan"), "valid_accuracy": -1.0}
    best_state = None
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(len(rolls))
        losses = []
        for i in range(0, len(order), cfg.batch_size):
            index = order[i : i + cfg.batch_size]
            batch = torch.from_numpy(rolls[index]).unsqueeze(1)  # (B, 1, 64, 84)
            if cfg.sigma_c > 0:
                batch = batch + torch.randn(batch.shape) * cfg.sigma_c
            loss = F.cross_entropy(model(batch), torch.from_numpy(labels[index]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        mean_loss = float(np.mean(losses)) if losses else float("nan")
        valid_acc = accuracy(model, *valid_t) if valid_t is not None else float("nan")
        log(f"classifier epoch {epoch}: loss {mean_loss:.4f} valid accuracy {valid_acc:.4f}")
        if valid_t is None or valid_acc > best["valid_accuracy"]:
            best = {"epochs": float(epoch), "train_loss": mean_loss, "valid_accuracy": valid_acc}
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return best


CHECKPOINT_FORMAT = "musebridge.genre_classifier/1"


def save_classifier(model: GenreClassifier, path, genres: tuple[str, ...]) -> None:
    """Write weights, config and the genres (index 0 = A); atomic replace."""
    import os
    from pathlib import Path

    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        "genres": list(genres),
        "state": model.state_dict(),
    }
    temporary = path.with_name(path.name + ".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def load_classifier(path, device: str | torch.device = "cpu") -> tuple[GenreClassifier, tuple[str, ...]]:
    """(classifier in eval mode, its genres (A, B, ...)); ValueError if it is not a classifier checkpoint."""
    payload = read_checkpoint(path, device, "genre classifier")
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a musebridge genre classifier checkpoint")
    model = GenreClassifier(ClassifierConfig.from_dict(payload["config"]))
    model.load_state_dict(payload["state"])
    model.to(device).eval()
    return model, tuple(str(g) for g in payload["genres"])
