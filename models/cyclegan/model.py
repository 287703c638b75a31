"""CycleGAN for symbolic genre transfer, after Brunner, Wang, Wattenhofer and Zhao (ICTAI 2018).

Input and output are binary piano rolls of one 4-bar phrase: (batch, 1, 64 steps, 84 pitches), MIDI 24..107.

- Generator: ResNet (7x7 conv, two stride-2 convs, residual blocks, two stride-2 transposed convs,
  7x7 conv, sigmoid), instance norm + ReLU.
- Discriminator: three convs (7x7 s2, 7x7 s2 + instance norm, 7x7 s1), a 16 x 21 patch of scores.
- Losses: least-squares GAN, cycle L1 (weight lambda), extra discriminators D_A,m / D_B,m that see the
  mixed set M = A u B as real (weight gamma). The paper's text says they pull the generators toward the
  music manifold, so by default the generators also get an adversarial term from them
  (`mixed_generator_loss`); the official code used them only in the discriminator loss (set it False).
- Half-normal noise |N(0, sigma_D)| on every discriminator input, an image pool of 50 fakes.

Configs: "brunner2018" is the paper's size (~12.5M parameters per generator); "cpu_small" is sized for
realtime use and training on a few CPU cores. The training loop lives in cyclegan/train.py.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from musebridge.models.common.checkpoint_io import read_checkpoint

STEPS = 64
PITCHES = 84
LOWEST_PITCH = 24

# The paper's three models: base: no extra discriminators; partial: extra discriminators against the
# mixed set M = A u B; full: the same networks, M = A u B u the other genres (the paper: Jazz, Classic
# and Pop). The mixed set is chosen by the training data (cyclegan/train.py), not by the networks.
MODEL_KINDS = ("base", "partial", "full")


@dataclass(frozen=True)
class CycleGANConfig:
    """Architecture and training hyper-parameters; a checkpoint stores it as a dict."""

    name: str = "brunner2018"
    steps: int = STEPS
    pitches: int = PITCHES
    generator_channels: int = 64  # ngf: 64 -> 128 -> 256 channels
    residual_blocks: int = 10
    discriminator_channels: int = 64  # ndf: 64 -> 256 channels
    discriminator_kernel: int = 7
    kind: str = "partial"
    cycle_weight: float = 10.0  # lambda
    mixed_weight: float = 1.0  # gamma
    mixed_generator_loss: bool = True
    sigma_d: float = 1.0
    pool_size: int = 50
    learning_rate: float = 2e-4
    beta1: float = 0.5
    batch_size: int = 16
    # Not in the paper: > 0 adds a learnable input skip, logits += w * (2x - 1) with w starting here, so
    # a generator starts near the identity (the cycle loss is met at once) instead of near silence.
    input_skip: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"kind must be one of {MODEL_KINDS}, got {self.kind!r}")
        if self.steps % 4 or self.pitches % 4:
            raise ValueError("steps and pitches must be divisible by 4 (two stride-2 stages)")
        if self.generator_channels < 1 or self.discriminator_channels < 1 or self.residual_blocks < 0:
            raise ValueError("channel counts must be >= 1 and residual_blocks >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> CycleGANConfig:
        """Build from a stored dict, ignoring unknown keys (older or newer checkpoints)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


CONFIGS: dict[str, CycleGANConfig] = {
    "brunner2018": CycleGANConfig(),
    "cpu_small": CycleGANConfig(
        name="cpu_small",
        generator_channels=16,
        residual_blocks=6,
        discriminator_channels=16,
    ),
}


def get_config(name: str, **overrides: object) -> CycleGANConfig:
    """A named config, optionally with some fields replaced."""
    if name not in CONFIGS:
        raise ValueError(f"unknown CycleGAN config {name!r}; known: {', '.join(sorted(CONFIGS))}")
    return replace(CONFIGS[name], **overrides) if overrides else CONFIGS[name]


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)


class ResidualBlock(nn.Module):
    """Two reflect-padded 3x3 convs with instance norm; ReLU after the sum (as the reference)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class Generator(nn.Module):
    """ResNet generator: roll (B, 1, T, P) in [0, 1] -> roll (B, 1, T, P) of note probabilities."""

    def __init__(self, config: CycleGANConfig):
        super().__init__()
        c = config.generator_channels
        self.encode = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(1, c, 7),  # (B, c, T, P)
            _norm(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),  # (B, 2c, T/2, P/2)
            _norm(2 * c),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * c, 4 * c, 3, stride=2, padding=1),  # (B, 4c, T/4, P/4)
            _norm(4 * c),
            nn.ReLU(inplace=True),
        )
        self.transform = nn.Sequential(*[ResidualBlock(4 * c) for _ in range(config.residual_blocks)])
        self.decode = nn.Sequential(
            nn.ConvTranspose2d(4 * c, 2 * c, 3, stride=2, padding=1, output_padding=1),  # (B, 2c, T/2, P/2)
            _norm(2 * c),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * c, c, 3, stride=2, padding=1, output_padding=1),  # (B, c, T, P)
            _norm(c),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(3),
            nn.Conv2d(c, 1, 7),  # (B, 1, T, P)
        )

        self.skip_weight = (
            nn.Parameter(torch.tensor(float(config.input_skip))) if config.input_skip > 0 else None
        )

    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        logits = self.decode(self.transform(self.encode(roll)))  # (B, 1, T, P)
        if self.skip_weight is not None:
            logits = logits + self.skip_weight * (2.0 * roll - 1.0)
        return torch.sigmoid(logits)


class PatchDiscriminator(nn.Module):
    """Three convs: roll (B, 1, T, P) -> patch scores (B, 1, T/4, P/4) (16 x 21 for the paper's roll)."""

    def __init__(self, config: CycleGANConfig):
        super().__init__()
        c, k = config.discriminator_channels, config.discriminator_kernel
        pad = k // 2
        self.layers = nn.Sequential(
            nn.Conv2d(1, c, k, stride=2, padding=pad),  # (B, c, T/2, P/2)
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c, 4 * c, k, stride=2, padding=pad),  # (B, 4c, T/4, P/4)
            _norm(4 * c),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * c, 1, k, stride=1, padding=pad),  # (B, 1, T/4, P/4)
        )

    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        return self.layers(roll)


class CycleGAN(nn.Module):
    """Both generators and all discriminators of one genre pair (A, B)."""

    def __init__(self, config: CycleGANConfig):
        super().__init__()
        self.config = config
        self.generator_ab = Generator(config)
        self.generator_ba = Generator(config)
        self.discriminator_a = PatchDiscriminator(config)
        self.discriminator_b = PatchDiscriminator(config)
        self.uses_mixed = config.kind in ("partial", "full")
        if self.uses_mixed:
            self.discriminator_a_mixed = PatchDiscriminator(config)
            self.discriminator_b_mixed = PatchDiscriminator(config)

    def generators(self) -> list[nn.Module]:
        return [self.generator_ab, self.generator_ba]

    def discriminators(self) -> list[nn.Module]:
        found = [self.discriminator_a, self.discriminator_b]
        if self.uses_mixed:
            found += [self.discriminator_a_mixed, self.discriminator_b_mixed]
        return found

    @torch.no_grad()
    def transfer(self, roll: torch.Tensor, to_b: bool = True, threshold: float = 0.5) -> torch.Tensor:
        """Binary roll (B, 1, T, P) -> the other genre's binary roll (probabilities >= threshold)."""
        generator = self.generator_ab if to_b else self.generator_ba
        return (generator(roll) >= threshold).to(roll.dtype)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def half_normal_noise(
    like: torch.Tensor, sigma: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """|N(0, sigma)| noise shaped like `like` (zeros when sigma is 0)."""
    if sigma <= 0:
        return torch.zeros_like(like)
    noise = torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
    return noise.abs() * sigma


def least_squares(scores: torch.Tensor, target: float) -> torch.Tensor:
    """LSGAN criterion: mean squared distance of the scores to the target label."""
    return torch.mean((scores - target) ** 2)


class ImagePool:
    """History of generated rolls (Shrivastava et al.): half the time a fake is swapped for an old one."""

    def __init__(self, size: int, rng: random.Random | None = None):
        self.size = size
        self.rng = rng or random.Random(0)
        self.items: list[torch.Tensor] = []

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        """Fakes (B, ...) -> a batch of the same shape, drawn from this batch and the pool."""
        if self.size <= 0:
            return batch
        out = []
        for item in batch.detach():
            item = item.unsqueeze(0)
            if len(self.items) < self.size:
                self.items.append(item.clone())
                out.append(item)
            elif self.rng.random() > 0.5:
                index = self.rng.randrange(self.size)
                out.append(self.items[index].clone())
                self.items[index] = item.clone()
            else:
                out.append(item)
        return torch.cat(out, dim=0)


# ---------------------------------------------------------------- checkpoints

CHECKPOINT_FORMAT = "musebridge.cyclegan/1"
ENCODING = {
    "name": "pianoroll",
    "bars": 4,
    "steps_per_bar": 16,
    "pitches": PITCHES,
    "lowest_pitch": LOWEST_PITCH,
}


def save_cyclegan(model: CycleGAN, path, genres: tuple[str, str], extra: dict | None = None) -> None:
    """Write the generators (what inference needs), config, encoding and genre pair; atomic replace."""
    import os
    from pathlib import Path

    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        "genres": list(genres),
        "encoding": dict(ENCODING),
        "generator_ab": model.generator_ab.state_dict(),
        "generator_ba": model.generator_ba.state_dict(),
        "extra": dict(extra or {}),
    }
    temporary = path.with_name(path.name + ".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def load_cyclegan(path, device: str | torch.device = "cpu") -> tuple[CycleGAN, tuple[str, str], dict]:
    """(model in eval mode, (genre A, genre B), extra) from a checkpoint; ValueError if it is not one."""
    payload = read_checkpoint(path, device, "CycleGAN")
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a musebridge CycleGAN checkpoint")
    model = CycleGAN(CycleGANConfig.from_dict(payload["config"]))
    model.generator_ab.load_state_dict(payload["generator_ab"])
    model.generator_ba.load_state_dict(payload["generator_ba"])
    model.to(device).eval()
    genre_a, genre_b = payload["genres"]
    return model, (str(genre_a), str(genre_b)), dict(payload.get("extra", {}))
