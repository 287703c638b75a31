"""A feature-based genre judge: hand-made, transposition-invariant statistics + logistic regression.

A second judge of a different kind from the CNN (classifier.py): a CNN can be fooled by textures a
generator learns to paint, while these statistics follow what musicologists count. It is trained on
real phrases only (never on transfers) and serves only to evaluate.

Features of one binary roll [64 steps, 84 pitches] (4 steps a quarter note), all invariant to
transposition (nothing depends on absolute pitch):
- pitch classes: magnitudes of the DFT (k = 1..6) of the duration-weighted pitch-class histogram
  (rotation-invariant; k = 5 measures diatonicism, k = 3 and 4 augmented/diminished colour);
- melodic intervals of the top voice between successive onsets: histogram -12..+12 (larger folded
  to the bins +-12), share of steps (|i| <= 2), of leaps (|i| >= 5) and of repeated notes;
- vertical intervals (mod 12) between every two notes sounding together: 12-bin histogram;
- rhythm: onset positions in the beat (4 bins) and in the bar (16 bins), note lengths (8 bins:
  1, 2, 3, 4, 5-6, 7-8, 9-12, 13+ steps), onsets per step, share of steps with an onset;
- texture: mean and max notes sounding, share of steps with 0, 1, 2, 3+ notes, pitch range and
  standard deviation of the sounding pitches (in semitones, so transposition-invariant).

Model: multinomial logistic regression on standardised features (L2 weight `l2`), fitted by L-BFGS
in torch (full batch; no scikit-learn dependency). Logits [N, genres]; index i = genres[i].
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from musebridge.models.common.checkpoint_io import read_checkpoint

CHECKPOINT_FORMAT = "musebridge.feature_judge/1"
STEPS_PER_BEAT = 4
STEPS_PER_BAR = 16
LENGTH_BINS = np.array([1, 2, 3, 4, 6, 8, 12, 10**6])  # upper edges (steps)


def _runs(roll: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pitch, start, length) arrays of every note (run of active steps) of a roll [T, P]."""
    padded = np.zeros((roll.shape[0] + 2, roll.shape[1]), dtype=np.int8)
    padded[1:-1] = roll
    edges = np.diff(padded, axis=0)
    start_t, start_p = np.nonzero(edges.T == 1)[::-1]
    end_t, end_p = np.nonzero(edges.T == -1)[::-1]
    # nonzero on the transpose orders by pitch, then time: starts and ends pair up
    return start_p, start_t, end_t - start_t


def _normalised(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else counts.astype(np.float64)


def roll_features(roll: np.ndarray) -> np.ndarray:
    """Feature vector (float64 [N_FEATURES]) of one binary roll [T, P]."""
    roll = roll.astype(bool)
    steps = roll.shape[0]
    pitches, starts, lengths = _runs(roll)
    out: list[np.ndarray] = []

    pc_hist = np.zeros(12)
    np.add.at(pc_hist, np.nonzero(roll)[1] % 12, 1.0)
    spectrum = np.abs(np.fft.fft(_normalised(pc_hist)))[1:7]
    out.append(spectrum)

    # top voice: the highest pitch starting at each onset step
    melodic = np.zeros(25)
    steps_share = leaps = repeats = 0.0
    if len(starts):
        order = np.lexsort((-pitches, starts))
        first = np.ones(len(order), dtype=bool)
        first[1:] = starts[order][1:] != starts[order][:-1]
        top = pitches[order][first]
        intervals = np.diff(top)
        if len(intervals):
            np.add.at(melodic, np.clip(intervals, -12, 12) + 12, 1.0)
            steps_share = float(np.mean((np.abs(intervals) <= 2) & (intervals != 0)))
            leaps = float(np.mean(np.abs(intervals) >= 5))
            repeats = float(np.mean(intervals == 0))
    out += [_normalised(melodic), np.array([steps_share, leaps, repeats])]

    vertical = np.zeros(12)
    for t in np.nonzero(roll.sum(1) >= 2)[0]:
        sounding = np.nonzero(roll[t])[0]
        differences = (sounding[None, :] - sounding[:, None])[np.triu_indices(len(sounding), 1)]
        np.add.at(vertical, differences % 12, 1.0)
    out.append(_normalised(vertical))

    in_beat = np.zeros(STEPS_PER_BEAT)
    in_bar = np.zeros(STEPS_PER_BAR)
    length_hist = np.zeros(len(LENGTH_BINS))
    if len(starts):
        np.add.at(in_beat, starts % STEPS_PER_BEAT, 1.0)
        np.add.at(in_bar, starts % STEPS_PER_BAR, 1.0)
        np.add.at(length_hist, np.searchsorted(LENGTH_BINS, lengths), 1.0)
    onset_steps = len(np.unique(starts)) if len(starts) else 0
    out += [
        _normalised(in_beat),
        _normalised(in_bar),
        _normalised(length_hist),
        np.array([len(starts) / steps, onset_steps / steps]),
    ]

    sounding_count = roll.sum(1)
    active = np.nonzero(roll)[1]
    out.append(
        np.array(
            [
                sounding_count.mean(),
                sounding_count.max(initial=0),
                np.mean(sounding_count == 0),
                np.mean(sounding_count == 1),
                np.mean(sounding_count == 2),
                np.mean(sounding_count >= 3),
                (active.max() - active.min()) / 12.0 if len(active) else 0.0,
                active.std() / 12.0 if len(active) else 0.0,
            ]
        )
    )
    return np.concatenate(out)


N_FEATURES = len(roll_features(np.zeros((64, 84), dtype=bool)))


def features(rolls: np.ndarray) -> np.ndarray:
    """Features [N, N_FEATURES] of binary rolls [N, T, P]."""
    if len(rolls) == 0:
        return np.zeros((0, N_FEATURES))
    return np.stack([roll_features(r) for r in rolls])


@dataclass
class FeatureJudge:
    """Logistic regression over roll_features; genres[i] is class i."""

    genres: tuple[str, ...]
    mean: np.ndarray  # [F]
    scale: np.ndarray  # [F]
    weight: np.ndarray  # [F, G]
    bias: np.ndarray  # [G]
    l2: float = 1e-3

    def logits(self, rolls: np.ndarray) -> np.ndarray:
        """Logits [N, G] of binary rolls [N, 64, 84]."""
        x = (features(rolls) - self.mean) / self.scale
        return x @ self.weight + self.bias

    def predict(self, rolls: np.ndarray) -> np.ndarray:
        """Genre index [N] (argmax of the logits)."""
        return self.logits(rolls).argmax(1)

    def accuracy(self, rolls_by_genre: list[np.ndarray]) -> float:
        right = sum(int((self.predict(r) == i).sum()) for i, r in enumerate(rolls_by_genre) if len(r))
        total = sum(len(r) for r in rolls_by_genre)
        return right / total if total else float("nan")


def fit_feature_judge(
    genres: tuple[str, ...], train: list[np.ndarray], l2: float = 1e-3, iterations: int = 200
) -> FeatureJudge:
    """Fit on real rolls train[i] [N_i, 64, 84] of genres[i]; classes weighted to count equally."""
    if len(train) != len(genres) or any(len(t) == 0 for t in train):
        raise ValueError("the feature judge needs real phrases of every genre")
    x = np.concatenate([features(t) for t in train])
    y = np.concatenate([np.full(len(t), i) for i, t in enumerate(train)])
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-8] = 1.0
    xt = torch.from_numpy((x - mean) / scale).double()
    yt = torch.from_numpy(y).long()
    class_weight = torch.tensor([len(y) / (len(genres) * len(t)) for t in train], dtype=torch.float64)
    weight = torch.zeros(xt.shape[1], len(genres), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(genres), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(xt @ weight + bias, yt, weight=class_weight) + l2 * (weight**2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return FeatureJudge(
        tuple(genres), mean, scale, weight.detach().numpy().copy(), bias.detach().numpy().copy(), l2
    )


def save_feature_judge(judge: FeatureJudge, path: Path) -> None:
    """Write the judge as a torch file of tensors (loadable with weights_only=True); atomic replace."""
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "genres": list(judge.genres),
        "n_features": N_FEATURES,
        "l2": judge.l2,
        "mean": torch.from_numpy(judge.mean),
        "scale": torch.from_numpy(judge.scale),
        "weight": torch.from_numpy(judge.weight),
        "bias": torch.from_numpy(judge.bias),
    }
    temporary = path.with_name(path.name + ".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def load_feature_judge(path: Path) -> FeatureJudge:
    """The judge saved at `path`; ValueError if it is not one (or its features changed since)."""
    payload = read_checkpoint(path, "cpu", "feature judge")
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a musebridge feature judge")
    if payload["n_features"] != N_FEATURES:
        raise ValueError(f"{path} was fitted on {payload['n_features']} features, this code has {N_FEATURES}")
    return FeatureJudge(
        tuple(payload["genres"]),
        payload["mean"].numpy(),
        payload["scale"].numpy(),
        payload["weight"].numpy(),
        payload["bias"].numpy(),
        float(payload["l2"]),
    )
