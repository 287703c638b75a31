"""The genre classifier of Brunner et al. 2018, used only to evaluate transfer (never trained on transfers).

Roll (B, 1, 64, 84) binary -> two logits (genre A, genre B). Inputs are mapped to x * 2 - 1 first.
Convs (kernel = stride, no padding): [1x12] -> 64 (one per octave), [4x1] -> 128 + IN,
[2x1] -> 256 + IN, [8x1] -> 512 + IN, [1x7] -> 2; LeakyReLU 0.2 between.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


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
    """Binary genre classifier: roll (B, 1, 64, 84) in [0, 1] -> logits (B, 2); index 0 = genre A."""

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
            nn.Conv2d(8 * c, 2, (1, 7), stride=(1, 7)),  # (B, 2, 1, 1)
        )

    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        return self.layers(roll * 2.0 - 1.0).flatten(1)  # (B, 2)

    @torch.no_grad()
    def probabilities(self, rolls: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Softmax (N, 2) of rolls (N, 1, 64, 84), binarised at 0.5 first, in eval mode."""
        was_training = self.training
        self.eval()
        out = [
            F.softmax(self((rolls[i : i + batch_size] >= 0.5).float()), dim=1)
            for i in range(0, rolls.shape[0], batch_size)
        ]
        self.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, 2)


def accuracy(model: GenreClassifier, rolls_a: torch.Tensor, rolls_b: torch.Tensor) -> float:
    """Fraction of A rolls classified A and B rolls classified B, over both sets together."""
    right = int((model.probabilities(rolls_a).argmax(1) == 0).sum()) + int(
        (model.probabilities(rolls_b).argmax(1) == 1).sum()
    )
    total = rolls_a.shape[0] + rolls_b.shape[0]
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
    cfg = model.config
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=(cfg.beta1, 0.999))
    rolls = np.concatenate([train_a, train_b]).astype(np.float32)
    labels = np.concatenate([np.zeros(len(train_a)), np.ones(len(train_b))]).astype(np.int64)
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


def save_classifier(model: GenreClassifier, path, genres: tuple[str, str]) -> None:
    """Write weights, config and the genre pair (index 0 = A); atomic replace."""
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


def load_classifier(path, device: str | torch.device = "cpu") -> tuple[GenreClassifier, tuple[str, str]]:
    """(classifier in eval mode, (genre A, genre B)); ValueError if it is not a classifier checkpoint."""
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # noqa: BLE001 - unpickling errors come in many types
        raise ValueError(f"cannot read classifier checkpoint {path}: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a musebridge genre classifier checkpoint")
    model = GenreClassifier(ClassifierConfig.from_dict(payload["config"]))
    model.load_state_dict(payload["state"])
    model.to(device).eval()
    genre_a, genre_b = payload["genres"]
    return model, (str(genre_a), str(genre_b))
