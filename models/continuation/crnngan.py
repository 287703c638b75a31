"""C-RNN-GAN (Mogren 2016): an LSTM generator and a bidirectional LSTM discriminator over tone steps.

Data: models/encoding/tones.py steps, each up to 3 tones (C-RNN-GAN-3) of (length ticks, frequency Hz,
intensity, ticks since the previous step). The networks see them scaled (`to_model_space`): length and
time in quarter notes, frequency as log2(f / 440) (octaves from A4, 0 for a silent slot), intensity / 127.

- Generator: per step, uniform noise in [0, 1]^noise_size joined with its previous output -> dense ->
  2-layer LSTM -> dense -> one step of features. With `prime` it first reads a played phrase (each real
  step fed as "previous output"), then runs on its own outputs: that is how it continues a call.
- Discriminator: 2-layer bidirectional LSTM; a shared per-step dense + sigmoid, averaged over steps.
  `features` (its last LSTM layer's outputs) serve feature matching.
- The paper's networks are 2 x 350 (`CRNNGANConfig.paper()`); the shipped CPU-sized one is smaller.
Training (MSE pretraining with a growing length, feature matching, discriminator freezing) lives in
models/continuation/train.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musebridge.models.common import checkpoint_io
from musebridge.models.encoding import tones as tone_encoding

ENCODING_NAME = "tones384x3"
_LENGTH, _FREQUENCY, _INTENSITY, _TIME = range(4)
SILENCE_BELOW = 0.3  # scaled intensity (velocity / 127) under which a generated slot is no tone


@dataclass
class CRNNGANConfig:
    """Shape of one C-RNN-GAN; plain types only (stored in checkpoints)."""

    tones_per_step: int = tone_encoding.TONES_PER_STEP
    noise_size: int = 4
    generator_size: int = 128
    generator_layers: int = 2
    discriminator_size: int = 128
    discriminator_layers: int = 2
    dropout: float = 0.0

    @property
    def step_size(self) -> int:
        return self.tones_per_step * tone_encoding.N_FEATURES

    @classmethod
    def paper(cls) -> CRNNGANConfig:
        """Mogren's setting: 2 x 350 LSTMs for both networks, 3 tones a step."""
        return cls(generator_size=350, discriminator_size=350)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CRNNGANConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# ---- scaling between tone arrays (tones.py units) and model space ------------------------------------


def to_model_space(array: np.ndarray, tones_per_step: int = tone_encoding.TONES_PER_STEP) -> np.ndarray:
    """tones.py array [..., tones * 4] -> scaled float32 features of the same shape."""
    values = np.asarray(array, dtype=np.float64).reshape(*np.shape(array)[:-1], tones_per_step, 4)
    out = np.zeros_like(values)
    ticks = tone_encoding.TICKS_PER_QUARTER
    out[..., _LENGTH] = values[..., _LENGTH] / ticks
    sounding = values[..., _FREQUENCY] > 0
    out[..., _FREQUENCY] = np.where(
        sounding, np.log2(np.where(sounding, values[..., _FREQUENCY], 440.0) / 440.0), 0
    )
    out[..., _INTENSITY] = values[..., _INTENSITY] / 127.0
    out[..., _TIME] = values[..., _TIME] / ticks
    return out.reshape(np.shape(array)).astype(np.float32)


def from_model_space(
    features: np.ndarray,
    tones_per_step: int = tone_encoding.TONES_PER_STEP,
    grid_beats: float = 0.25,
    silence_below: float = SILENCE_BELOW,
) -> np.ndarray:
    """Scaled features [steps, tones * 4] -> a tones.py array, onsets and lengths snapped to `grid_beats`
    (0 = no snapping). Step onsets are snapped on the absolute time line, so rounding never drifts.
    A slot whose scaled intensity is under `silence_below` becomes silent (all zeros but its time)."""
    values = np.asarray(features, dtype=np.float64).reshape(-1, tones_per_step, 4)
    if not np.all(np.isfinite(values)):
        raise ValueError("generated features hold NaN or infinity")
    ticks = tone_encoding.TICKS_PER_QUARTER
    step_time = np.maximum(values[:, 0, _TIME], 0.0)
    onsets = np.cumsum(step_time)
    lengths = np.maximum(values[..., _LENGTH], 0.0)
    if grid_beats > 0:
        onsets = np.round(onsets / grid_beats) * grid_beats
        lengths = np.maximum(np.round(lengths / grid_beats), 1.0) * grid_beats
    times = np.diff(onsets, prepend=0.0)
    out = np.zeros_like(values)
    out[..., _LENGTH] = lengths * ticks
    out[..., _FREQUENCY] = 440.0 * np.power(2.0, np.clip(values[..., _FREQUENCY], -6.0, 6.0))
    out[..., _INTENSITY] = np.clip(values[..., _INTENSITY], 0.0, 1.0) * 127.0
    out[..., _TIME] = (times * ticks)[:, None]
    silent = values[..., _INTENSITY] < silence_below
    out[..., :_TIME][silent] = 0.0
    return out.reshape(-1, tones_per_step * 4).astype(np.float32)


# ---- networks ---------------------------------------------------------------------------------------


class Generator(nn.Module):
    """LSTM generator: step input = [uniform noise, previous output] -> features of the step."""

    def __init__(self, config: CRNNGANConfig) -> None:
        super().__init__()
        self.config = config
        self.input = nn.Linear(config.noise_size + config.step_size, config.generator_size)
        self.lstm = nn.LSTM(
            config.generator_size,
            config.generator_size,
            config.generator_layers,
            batch_first=True,
            dropout=config.dropout if config.generator_layers > 1 else 0.0,
        )
        self.output = nn.Linear(config.generator_size, config.step_size)

    def noise(
        self, batch: int, steps: int, generator: torch.Generator | None = None, scale: float = 1.0
    ) -> torch.Tensor:
        """Uniform noise [B, T, noise_size] in [0, 1), squeezed around 0.5 by `scale` (1.0 = as trained)."""
        device = self.output.weight.device
        noise = torch.rand(batch, steps, self.config.noise_size, generator=generator, device=device)
        return noise if scale == 1.0 else 0.5 + (noise - 0.5) * scale

    def teacher_forced(
        self, real: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Outputs [B, T, F] when step t reads the real step t-1 (zeros before the first), and the state.

        real: [B, T, F] scaled features; noise: [B, T, noise_size]."""
        previous = torch.cat([torch.zeros_like(real[:, :1]), real[:, :-1]], dim=1)
        hidden, state = self.lstm(torch.relu(self.input(torch.cat([noise, previous], dim=-1))))
        return self.output(hidden), state

    def run(
        self,
        steps: int,
        noise: torch.Tensor,
        previous: torch.Tensor | None = None,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Free-running outputs [B, steps, F]: each step reads its own previous output.

        noise: [B, steps, noise_size]; previous: [B, F] first "previous output" (zeros if None);
        state: LSTM state to start from (e.g. after priming)."""
        batch = noise.shape[0]
        if previous is None:
            previous = noise.new_zeros(batch, self.config.step_size)
        outputs = []
        for t in range(steps):
            step_in = torch.relu(self.input(torch.cat([noise[:, t], previous], dim=-1))).unsqueeze(1)
            hidden, state = self.lstm(step_in, state)
            previous = self.output(hidden[:, 0])
            outputs.append(previous)
        return torch.stack(outputs, dim=1) if outputs else noise.new_zeros(batch, 0, self.config.step_size)

    @torch.inference_mode()
    def continue_call(
        self,
        call: torch.Tensor,
        steps: int,
        generator: torch.Generator | None = None,
        noise_scale: float = 1.0,
    ) -> torch.Tensor:
        """Prime on `call` [B, Tc, F] (scaled real steps; Tc may be 0), then generate `steps` more.

        Returns [B, steps, F] scaled features."""
        batch, call_steps = call.shape[0], call.shape[1]
        if call_steps == 0:
            return self.run(steps, self.noise(batch, steps, generator, noise_scale))
        _, state = self.teacher_forced(call, self.noise(batch, call_steps, generator, noise_scale))
        return self.run(
            steps, self.noise(batch, steps, generator, noise_scale), previous=call[:, -1], state=state
        )


class Discriminator(nn.Module):
    """Bidirectional LSTM discriminator: per-step dense + sigmoid, averaged over steps."""

    def __init__(self, config: CRNNGANConfig) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            config.step_size,
            config.discriminator_size,
            config.discriminator_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.discriminator_layers > 1 else 0.0,
        )
        self.per_step = nn.Linear(2 * config.discriminator_size, 1)

    def forward(self, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean probability "real" [B], last-layer features [B, T, 2H]) of steps [B, T, F]."""
        features, _ = self.lstm(steps)
        probability = torch.sigmoid(self.per_step(features)).squeeze(-1).mean(dim=1)
        return probability, features


class CRNNGAN(nn.Module):
    """The pair, with generation helpers that speak tones.py arrays."""

    def __init__(self, config: CRNNGANConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)

    def continue_tones(
        self,
        call_tones: np.ndarray,
        steps: int,
        seed: int = 0,
        grid_beats: float = 0.25,
        batch: int = 1,
        noise_scale: float = 1.0,
    ) -> list[np.ndarray]:
        """`batch` continuations (tones.py arrays [steps, F]) of a call's tone array [Tc, F] (Tc may be 0)."""
        width = self.config.step_size
        call = np.asarray(call_tones, dtype=np.float32).reshape(-1, width)
        device = self.generator.output.weight.device
        scaled = torch.from_numpy(to_model_space(call, self.config.tones_per_step)).to(device)
        rng = torch.Generator(device=device).manual_seed(int(seed))
        out = self.generator.continue_call(scaled.unsqueeze(0).expand(batch, -1, -1), steps, rng, noise_scale)
        return [from_model_space(row.cpu().numpy(), self.config.tones_per_step, grid_beats) for row in out]


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Squared distance between the mean discriminator features of real and generated batches."""
    return F.mse_loss(
        fake_features.mean(dim=(0, 1)), real_features.mean(dim=(0, 1)).detach(), reduction="sum"
    )


def checkpoint_dict(model: CRNNGAN, genres: tuple[str, ...] | list[str], extra: dict | None = None) -> dict:
    """What a .pt holds: config, encoding, genres and weights (loadable with weights_only=True)."""
    return checkpoint_io.checkpoint_dict("crnngan", model, ENCODING_NAME, genres, extra)


def model_from_checkpoint(checkpoint: dict, device: str | torch.device = "cpu") -> CRNNGAN:
    """Rebuild the model a checkpoint_dict describes, in eval mode."""
    return checkpoint_io.rebuild(checkpoint, "crnngan", CRNNGAN, CRNNGANConfig, device)
