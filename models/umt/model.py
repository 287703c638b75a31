"""Universal music translation (Mor, Wolf, Polyak and Taigman 2019) on symbolic piano rolls.

One shared encoder, one WaveNet-style decoder per genre, a domain-confusion classifier on the latent.
Phrases are the CycleGAN's binary piano roll (4 bars x 16 steps x 84 pitches, MIDI 24..107, tracks
merged; models/encoding/pianoroll.py): it keeps chords (chorale, renaissance) as well as melodies, and
both judges and the CycleGAN comparison read the same roll.

- Encoder (non-causal): 84 -> H 1x1 conv, residual blocks of dilated kernel-3 convs (ReLU, 1x1, add;
  the reference code's DilatedResConv), 1x1 -> latent_dim, average-pooled over `pool` steps:
  roll [B, 64, 84] -> latent [B, latent_dim, 64 / pool].
- Bottleneck: "continuous" (the pooled vectors, NSynth-style) or "argmax" (Dieleman et al. 2018:
  ReLU, divisive normalisation q / sum(q), a one-hot of the argmax forward, the gradient of q backward
  = straight-through).
- Decoder per genre (causal WaveNet): input at step t is the roll frame t-1 (zeros at t = 0) plus a
  bar-position embedding; gated layers tanh(Wf x + Vf c) * sigmoid(Wg x + Vg c) with dilated kernel-2
  causal convs, c = the latent upsampled to steps (repeat); residual and skip 1x1s; head ReLU-1x1-
  ReLU-1x1 -> 84 logits per step, one Bernoulli per pitch (multi-label: chords are emitted directly).
- Domain confusion: a small conv classifier predicts the input's genre from the latent; the encoder
  is trained against it with weight lambda (paper 1e-2).

Generation is autoregressive over the 64 steps with per-layer queues (Fast WaveNet, as
models/continuation/wavenet.py); `generate_naive` recomputes the stack each step and gives the same roll.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musebridge.models.common.checkpoint_io import read_checkpoint
from musebridge.models.encoding import pianoroll

STEPS = pianoroll.ROLL_STEPS  # 64
PITCHES = pianoroll.N_PITCHES  # 84
STEPS_PER_BAR = 16
ENCODING_NAME = "pianoroll64x84"
CHECKPOINT_FORMAT = "musebridge.umt/1"
BOTTLENECKS = ("continuous", "argmax")


@dataclass(frozen=True)
class UMTConfig:
    """Architecture and training settings; plain types only (stored in checkpoints)."""

    name: str = "cpu_small"
    encoder_channels: int = 64
    encoder_blocks: int = 2
    encoder_layers: int = 4  # dilations 1, 2, 4, 8 per block (kernel 3, non-causal)
    latent_dim: int = 16
    pool: int = 4  # steps per latent vector (4 = one beat)
    bottleneck: str = "continuous"
    decoder_channels: int = 48
    decoder_skip: int = 96
    decoder_blocks: int = 2
    decoder_layers: int = 5  # dilations 1..16 per block (kernel 2, causal)
    classifier_channels: int = 32
    classifier_genres: int = 0  # outputs of the domain classifier: the genres it was trained on (0: all)
    confusion_weight: float = 1e-2  # lambda of the domain confusion (paper 1e-2)
    diversity_weight: float = 0.1  # argmax bottleneck only: keeps the codes in use (Dieleman 2018)
    augment: bool = True
    augment_segments: int = 2  # segments transposed by +-1 semitone per phrase
    augment_segment_steps: tuple[int, int] = (2, 8)  # 2..8 sixteenths (1/8 to 1/2 bar)
    augment_drop: float = 0.1  # probability that a note is dropped
    augment_nudge: float = 0.1  # probability that a note's onset moves one step
    learning_rate: float = 1e-3
    batch_per_genre: int = 8
    genres: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.bottleneck not in BOTTLENECKS:
            raise ValueError(f"bottleneck must be one of {BOTTLENECKS}, got {self.bottleneck!r}")
        if STEPS % self.pool:
            raise ValueError(f"pool {self.pool} does not divide the {STEPS} steps of a phrase")

    @property
    def encoder_dilations(self) -> list[int]:
        return [2**i for _ in range(self.encoder_blocks) for i in range(self.encoder_layers)]

    @property
    def decoder_dilations(self) -> list[int]:
        return [2**i for _ in range(self.decoder_blocks) for i in range(self.decoder_layers)]

    @property
    def latent_steps(self) -> int:
        return STEPS // self.pool

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["augment_segment_steps"] = list(self.augment_segment_steps)
        values["genres"] = list(self.genres)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> UMTConfig:
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in values.items() if k in known}
        if "augment_segment_steps" in kept:
            kept["augment_segment_steps"] = tuple(kept["augment_segment_steps"])
        if "genres" in kept:
            kept["genres"] = tuple(kept["genres"])
        return cls(**kept)


CONFIGS = {
    "tiny": UMTConfig(
        name="tiny",
        encoder_channels=16,
        encoder_blocks=1,
        encoder_layers=2,
        latent_dim=8,
        decoder_channels=16,
        decoder_skip=16,
        decoder_blocks=1,
        decoder_layers=3,
        classifier_channels=8,
    ),  # fmt: skip  (tests)
    "cpu_small": UMTConfig(),
}


def get_config(name: str, **overrides: Any) -> UMTConfig:
    """A named config with overrides; ValueError for an unknown name."""
    if name not in CONFIGS:
        raise ValueError(f"unknown UMT config {name!r} (known: {', '.join(CONFIGS)})")
    return replace(CONFIGS[name], name=name, **overrides)


# ---------------------------------------------------------------- encoder


class DilatedResidual(nn.Module):
    """Non-causal residual layer: dilated kernel-3 conv -> ReLU -> 1x1, added to the input."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.project = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(F.relu(self.conv(F.relu(x))))


def argmax_bottleneck(latent: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Dieleman et al. 2018's argmax autoencoder code: latent [B, K, L] -> (one-hot [B, K, L], q).

    q = ReLU(latent) / (sum_K ReLU(latent) + eps) (divisive normalisation); the forward value is the
    one-hot of argmax_K q, the backward gradient is q's (straight-through).
    """
    positive = F.relu(latent)
    q = positive / (positive.sum(1, keepdim=True) + eps)
    hard = F.one_hot(q.argmax(1), latent.shape[1]).transpose(1, 2).to(q.dtype)
    return q + (hard - q).detach(), q


class Encoder(nn.Module):
    """Shared encoder: roll [B, 64, 84] (0/1) -> latent [B, latent_dim, 64 / pool] (and q for argmax)."""

    def __init__(self, config: UMTConfig) -> None:
        super().__init__()
        self.config = config
        h = config.encoder_channels
        self.inp = nn.Conv1d(PITCHES, h, 1)
        self.layers = nn.ModuleList(DilatedResidual(h, d) for d in config.encoder_dilations)
        self.out = nn.Conv1d(h, config.latent_dim, 1)

    def forward(self, roll: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.inp(roll.transpose(1, 2))  # [B, H, T]
        for layer in self.layers:
            x = layer(x)
        latent = F.avg_pool1d(self.out(F.relu(x)), self.config.pool)  # [B, D, L]
        if self.config.bottleneck == "argmax":
            return argmax_bottleneck(latent)
        return latent, None


class DomainClassifier(nn.Module):
    """Latent [B, D, L] -> genre logits [B, G]: two kernel-3 convs with ELU, mean over time, linear."""

    def __init__(self, latent_dim: int, channels: int, genres: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(latent_dim, channels, 3, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1)
        self.out = nn.Linear(channels, genres)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = F.elu(self.conv2(F.elu(self.conv1(latent))))
        return self.out(x.mean(-1))


# ---------------------------------------------------------------- decoder


class GatedLayer(nn.Module):
    """One causal layer: kernel-2 dilated conv + latent condition -> tanh * sigmoid -> residual, skip."""

    def __init__(self, channels: int, skip: int, latent_dim: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(channels, 2 * channels, 2, dilation=dilation)  # tap 0: t - d, tap 1: t
        self.condition = nn.Conv1d(latent_dim, 2 * channels, 1, bias=False)
        self.residual = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip, 1)

    def gate(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        pre = self.conv(F.pad(x, (self.dilation, 0))) + condition
        filt, gate = pre.chunk(2, dim=1)
        return torch.tanh(filt) * torch.sigmoid(gate)


class Decoder(nn.Module):
    """p(roll_t | roll_<t, latent) for one genre: logits [B, 64, 84], one Bernoulli per pitch and step."""

    def __init__(self, config: UMTConfig) -> None:
        super().__init__()
        self.config = config
        c, s = config.decoder_channels, config.decoder_skip
        self.inp = nn.Conv1d(PITCHES, c, 1)
        self.position = nn.Embedding(STEPS_PER_BAR, c)
        self.layers = nn.ModuleList(GatedLayer(c, s, config.latent_dim, d) for d in config.decoder_dilations)
        self.head1 = nn.Conv1d(s, s, 1)
        self.head2 = nn.Conv1d(s, PITCHES, 1)

    def upsample(self, latent: torch.Tensor, steps: int = STEPS) -> torch.Tensor:
        """Latent [B, D, L] -> [B, D, steps] (each latent vector repeated over its `pool` steps)."""
        return latent.repeat_interleave(self.config.pool, dim=-1)[..., :steps]

    def forward(self, roll: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits [B, T, 84]: output t predicts frame t from frames < t and the latent."""
        batch, steps, _ = roll.shape
        previous = F.pad(roll.transpose(1, 2), (1, 0))[..., :steps]  # frame t-1 at t, zeros at 0
        positions = torch.arange(steps, device=roll.device) % STEPS_PER_BAR
        x = self.inp(previous) + self.position(positions).t().unsqueeze(0)
        c = self.upsample(latent, steps)
        skip_sum = 0.0
        for layer in self.layers:
            z = layer.gate(x, layer.condition(c))
            x = x + layer.residual(z)
            skip_sum = skip_sum + layer.skip(z)
        return self.head2(F.relu(self.head1(F.relu(skip_sum)))).transpose(1, 2)


# ---------------------------------------------------------------- the whole model


class UniversalTranslator(nn.Module):
    """Shared encoder + one decoder per genre + domain classifier. Genres in config.genres order."""

    def __init__(self, config: UMTConfig) -> None:
        super().__init__()
        if not config.genres:
            raise ValueError("a UMT model needs at least one genre")
        if len(set(config.genres)) != len(config.genres):
            raise ValueError(f"genres must be distinct, got {config.genres}")
        # a genre added later (add_genre) has a decoder but no class in the domain classifier
        config = replace(config, classifier_genres=config.classifier_genres or len(config.genres))
        self.config = config
        self.encoder = Encoder(config)
        self.decoders = nn.ModuleDict({g: Decoder(config) for g in config.genres})
        self.classifier = DomainClassifier(
            config.latent_dim, config.classifier_channels, config.classifier_genres
        )
        # p >= threshold sounds a note in greedy generation; chosen on valid after training (train.py)
        self.threshold = 0.5

    @property
    def genres(self) -> tuple[str, ...]:
        return tuple(self.decoders.keys())

    def add_genre(self, genre: str) -> Decoder:
        """A new, untrained decoder for `genre` (the encoder and other decoders are untouched)."""
        if genre in self.decoders:
            raise ValueError(f"genre {genre!r} already has a decoder")
        decoder = Decoder(self.config)
        self.decoders[genre] = decoder
        self.config = replace(self.config, genres=(*self.config.genres, genre))
        return decoder

    def decoder(self, genre: str) -> Decoder:
        """The decoder of `genre`; ValueError naming the known genres otherwise."""
        if genre not in self.decoders:
            raise ValueError(f"no decoder for genre {genre!r} (known: {', '.join(self.genres)})")
        return self.decoders[genre]

    def encode(self, roll: torch.Tensor) -> torch.Tensor:
        """Roll [B, 64, 84] -> latent [B, latent_dim, 64 / pool] (one-hot codes for argmax)."""
        return self.encoder(roll)[0]

    @torch.inference_mode()
    def translate(
        self,
        roll: torch.Tensor,
        genre: str,
        threshold: float | None = None,
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
        guidance: float = 0.0,
    ) -> torch.Tensor:
        """Rolls [B, 64, 84] re-voiced by the decoder of `genre`: bool [B, 64, 84] (cached generation).

        temperature 0: a note sounds where p >= threshold (deterministic; default self.threshold);
        > 0: sampled from Bernoulli(sigmoid(logit / temperature)). guidance (logits, >= 0): input
        guidance, added to the logit of every cell the input sounds; 0 is the paper's decoding, larger
        keeps more of the input (onsets) and less of the genre (docs/models.md measures the trade).
        """
        decoder = self.decoder(genre)
        threshold = self.threshold if threshold is None else threshold
        roll = roll.float()
        guide = roll if guidance else None
        return generate(decoder, self.encode(roll), threshold, temperature, generator, guide, guidance)


def _choose(
    logits: torch.Tensor, threshold: float, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Logits [B, 84] -> frame [B, 84] float 0/1."""
    if temperature <= 0:
        return torch.from_numpy(_greedy(logits.detach().cpu().numpy(), threshold)).to(logits.device)
    return torch.bernoulli(torch.sigmoid(logits / temperature), generator=generator)


def _greedy(logits: np.ndarray, threshold: float) -> np.ndarray:
    """Frame float32 0/1 [B, 84]: sigmoid(logit) >= threshold, in NumPy float32 (both generation paths
    decide through this one function, so they agree even at the threshold)."""
    probabilities = 1.0 / (1.0 + np.exp(-logits.astype(np.float32)))
    return (probabilities >= np.float32(threshold)).astype(np.float32)


@torch.inference_mode()
def generate_naive(
    decoder: Decoder,
    latent: torch.Tensor,
    threshold: float = 0.5,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    guide: torch.Tensor | None = None,
    guidance: float = 0.0,
) -> torch.Tensor:
    """Reference generation: the whole stack recomputed for every step. Bool roll [B, 64, 84].

    guide [B, 64, 84] 0/1 (the input roll) and guidance (logits): see UniversalTranslator.translate."""
    _check_guidance(guide, guidance, latent.shape[0])
    roll = torch.zeros(latent.shape[0], STEPS, PITCHES, device=latent.device)
    for t in range(STEPS):
        logits = decoder(roll, latent)[:, t]  # frame t depends on frames < t only
        if guide is not None and guidance:
            logits = logits + guidance * guide[:, t].to(logits.dtype)
        roll[:, t] = _choose(logits, threshold, temperature, generator)
    return roll.bool()


MAX_GUIDANCE = 20.0  # logits: at 20 every input cell sounds (sigmoid > 0.99 for any logit above -15)


def check_guidance(guidance: float) -> None:
    """ValueError for an input guidance outside 0..MAX_GUIDANCE logits (NaN too)."""
    if not 0.0 <= guidance <= MAX_GUIDANCE:
        raise ValueError(f"guidance must be 0..{MAX_GUIDANCE:g}, got {guidance}")


def _check_guidance(guide: torch.Tensor | None, guidance: float, batch: int) -> None:
    """check_guidance, and ValueError for a guide not [batch, 64, 84]."""
    check_guidance(guidance)
    if guide is not None and tuple(guide.shape) != (batch, STEPS, PITCHES):
        raise ValueError(f"guide must be [{batch}, {STEPS}, {PITCHES}], got {list(guide.shape)}")


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().float().cpu().numpy())


def _step_weights(decoder: Decoder) -> dict:
    """The decoder's weights fused for the NumPy step, rebuilt only when a parameter has changed."""
    version = tuple((p._version, p.data_ptr()) for p in decoder.parameters())
    cached = getattr(decoder, "_step_weights_cache", None)
    if cached is not None and cached[0] == version:
        return cached[1]
    layers = decoder.layers
    weights = {
        "inp": _numpy(decoder.inp.weight.squeeze(-1).t()),  # [84, C]
        "inp_bias": _numpy(decoder.inp.bias),
        "position": _numpy(decoder.position.weight),  # [16, C]
        "taps": [_numpy(torch.cat([l.conv.weight[:, :, 0], l.conv.weight[:, :, 1]], 1).t()) for l in layers],
        "tap_biases": [_numpy(l.conv.bias) for l in layers],
        "conditions": [_numpy(l.condition.weight.squeeze(-1).t()) for l in layers],  # [D, 2C]
        "residuals": [_numpy(l.residual.weight.squeeze(-1).t()) for l in layers],
        "residual_biases": [_numpy(l.residual.bias) for l in layers],
        "skip": _numpy(torch.cat([l.skip.weight.squeeze(-1) for l in layers], 1).t()),  # [L * C, S]
        "skip_bias": _numpy(sum(l.skip.bias for l in layers)),
        "head1": _numpy(decoder.head1.weight.squeeze(-1).t()),
        "head1_bias": _numpy(decoder.head1.bias),
        "head2": _numpy(decoder.head2.weight.squeeze(-1).t()),
        "head2_bias": _numpy(decoder.head2.bias),
    }
    object.__setattr__(decoder, "_step_weights_cache", (version, weights))
    return weights


@torch.inference_mode()
def generate(
    decoder: Decoder,
    latent: torch.Tensor,
    threshold: float = 0.5,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    guide: torch.Tensor | None = None,
    guidance: float = 0.0,
) -> torch.Tensor:
    """Cached generation (Fast WaveNet): per layer a queue of its last `dilation` inputs, O(layers) a step.

    The step runs in NumPy (tiny matmuls for one or a few rows). The latent's contribution to every
    layer's gate is computed once for all steps. Same result as generate_naive. Bool roll [B, 64, 84].
    guide [B, 64, 84] 0/1 and guidance (logits added where the guide sounds): see translate.
    """
    _check_guidance(guide, guidance, latent.shape[0])
    bonus = _numpy(guide) * np.float32(guidance) if guide is not None and guidance else None
    w = _step_weights(decoder)
    batch = latent.shape[0]
    channels = decoder.config.decoder_channels
    c = _numpy(decoder.upsample(latent)).transpose(0, 2, 1)  # [B, T, D]
    conditions = [c @ cond + bias for cond, bias in zip(w["conditions"], w["tap_biases"], strict=True)]
    queues = [
        deque(np.zeros((batch, channels), np.float32) for _ in range(l.dilation)) for l in decoder.layers
    ]
    frame = np.zeros((batch, PITCHES), np.float32)
    out = np.zeros((batch, STEPS, PITCHES), dtype=bool)
    for t in range(STEPS):
        x = frame @ w["inp"] + w["inp_bias"] + w["position"][t % STEPS_PER_BAR]
        gated = []
        for index, queue in enumerate(queues):
            past = queue.popleft()
            queue.append(x)
            pre = np.concatenate([past, x], 1) @ w["taps"][index] + conditions[index][:, t]
            z = np.tanh(pre[:, :channels]) * (0.5 + 0.5 * np.tanh(0.5 * pre[:, channels:]))
            gated.append(z)
            x = x + z @ w["residuals"][index] + w["residual_biases"][index]
        skip = np.concatenate(gated, 1) @ w["skip"] + w["skip_bias"]
        hidden = np.maximum(np.maximum(skip, 0.0) @ w["head1"] + w["head1_bias"], 0.0)
        logits = hidden @ w["head2"] + w["head2_bias"]
        if bonus is not None:
            logits = logits + bonus[:, t]
        if temperature <= 0:  # the common case stays in NumPy (a torch call per step costs more)
            chosen = _greedy(logits, threshold)
        else:
            chosen = _choose(torch.from_numpy(logits), threshold, temperature, generator).numpy()
        out[:, t] = chosen > 0.5
        frame = chosen.astype(np.float32)
    return torch.from_numpy(out).to(latent.device)


# ---------------------------------------------------------------- checkpoints


def checkpoint_dict(model: UniversalTranslator, extra: dict | None = None) -> dict:
    """What a .pt holds (loadable with weights_only=True): format, config, encoding, genres, weights."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model": "umt",
        "config": model.config.to_dict(),
        "encoding": ENCODING_NAME,
        "genres": list(model.genres),
        "threshold": float(model.threshold),
        "state_dict": model.state_dict(),
        **(extra or {}),
    }


def save_umt(model: UniversalTranslator, path, extra: dict | None = None) -> None:
    """Write a checkpoint (atomic replace)."""
    import os
    from pathlib import Path

    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(checkpoint_dict(model, extra), temporary)
    os.replace(temporary, path)


def load_umt(path, device: str | torch.device = "cpu") -> tuple[UniversalTranslator, dict]:
    """(model in eval mode, the checkpoint's extra entries); ValueError if it is not a UMT checkpoint."""
    payload = read_checkpoint(path, device, "UMT")
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a musebridge UMT checkpoint")
    config = UMTConfig.from_dict(payload["config"])
    model = UniversalTranslator(config)
    model.load_state_dict(payload["state_dict"])
    model.threshold = float(payload.get("threshold", 0.5))
    model.to(device).eval()
    extra = {k: v for k, v in payload.items() if k not in ("format", "config", "state_dict", "threshold")}
    return model, extra
