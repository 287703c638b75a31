"""A WaveNet (van den Oord et al. 2016) over 90-class melody tokens, with Fast-WaveNet cached generation.

Tokens: 0 = hold, 1 = note-off, 2..89 = MIDI pitch 21..108; 4 steps per quarter note (16 per 4/4 bar).

- Input: token embedding + embedding of the step's position in its bar (the bar grid is known ahead,
  so it is a legitimate local condition) + an optional genre embedding (global condition).
- Layers: causal convolutions of kernel 2 with dilations 1, 2, 4, ... repeated in blocks; each layer
  computes tanh(filter) * sigmoid(gate), a 1x1 residual projection added to its input, and a 1x1 skip
  projection summed over layers; then ReLU -> 1x1 -> ReLU -> 1x1 -> 90 logits (softmax output).
- Receptive field = 1 + sum(dilations) steps; the default (2 blocks of 1..32) sees 127 steps (~8 bars).

Generation: `generate_naive` recomputes the whole causal stack for every new step (O(receptive field)
per step). `generate` keeps, per layer, a queue of its last `dilation` inputs (Fast WaveNet, Paine et al.
2016), so a step costs O(layers); the queues are primed by one parallel pass over the call. Both use the
same weights and the same random draws and return the same tokens (`WaveNetCache.step_logits`
is the cached step).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musebridge.models.common import checkpoint_io

NUM_CLASSES = 90
ENCODING_NAME = "melody90"
MAX_STEPS_PER_BAR = 64
CACHE_BARS = (1, 2, 4)  # bar_cache: the lags a melody repeats at (bar, two bars, a 4-bar phrase)


@dataclass
class WaveNetConfig:
    """Shape of one WaveNet; plain types only (stored in checkpoints)."""

    num_classes: int = NUM_CLASSES
    residual_channels: int = 64
    skip_channels: int = 128
    blocks: int = 2
    layers_per_block: int = 6  # dilations 1, 2, 4, ..., 2**(layers_per_block-1) per block
    num_genres: int = 0  # 0 = no genre conditioning
    steps_per_bar: int = 16  # default bar length of the training data (4/4)
    dropout: float = 0.0

    @property
    def dilations(self) -> list[int]:
        return [2**i for _ in range(self.blocks) for i in range(self.layers_per_block)]

    @property
    def receptive_field(self) -> int:
        """Steps of context one output sees (itself included)."""
        return 1 + sum(self.dilations)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> WaveNetConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class GatedLayer(nn.Module):
    """One dilated causal layer: kernel-2 conv -> tanh * sigmoid -> residual and skip 1x1 projections."""

    def __init__(self, channels: int, skip_channels: int, dilation: int, num_genres: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.channels = channels
        # taps: weight[:, :, 0] reads x[t - dilation], weight[:, :, 1] reads x[t]
        self.conv = nn.Conv1d(channels, 2 * channels, kernel_size=2, dilation=dilation)
        self.genre = nn.Embedding(num_genres, 2 * channels) if num_genres else None
        self.residual = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def _gate(self, pre: torch.Tensor) -> torch.Tensor:
        filt, gate = pre.chunk(2, dim=1)
        return torch.tanh(filt) * torch.sigmoid(gate)

    def forward(self, x: torch.Tensor, genre: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        # x: [B, C, T] -> (residual out [B, C, T], skip [B, S, T])
        pre = self.conv(F.pad(x, (self.dilation, 0)))  # [B, 2C, T], causal
        if self.genre is not None and genre is not None:
            pre = pre + self.genre(genre).unsqueeze(-1)
        z = self._gate(pre)
        return x + self.residual(z), self.skip(z)

    def residual_out(self, x: torch.Tensor, genre: torch.Tensor | None) -> torch.Tensor:
        """forward's residual output only (priming a cache needs no skips): [B, C, T] -> [B, C, T]."""
        pre = self.conv(F.pad(x, (self.dilation, 0)))
        if self.genre is not None and genre is not None:
            pre = pre + self.genre(genre).unsqueeze(-1)
        return x + self.residual(self._gate(pre))


class MelodyWaveNet(nn.Module):
    """Next-token model p(x_t | x_<t, bar position, genre) over 90 melody classes."""

    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__()
        self.config = config
        c, s = config.residual_channels, config.skip_channels
        self.token_embedding = nn.Embedding(config.num_classes + 1, c)  # last index = "start" token
        self.position_embedding = nn.Embedding(MAX_STEPS_PER_BAR, c)
        self.layers = nn.ModuleList(GatedLayer(c, s, d, config.num_genres) for d in config.dilations)
        self.dropout = nn.Dropout(config.dropout)
        self.head1 = nn.Conv1d(s, s, 1)
        self.head2 = nn.Conv1d(s, config.num_classes, 1)

    @property
    def start_token(self) -> int:
        return self.config.num_classes

    def _inputs(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        # tokens, positions: [B, T] -> [B, C, T]
        return (self.token_embedding(tokens) + self.position_embedding(positions)).transpose(1, 2)

    def _head(self, skip_sum: torch.Tensor) -> torch.Tensor:
        # [B, S, T] -> [B, K, T]
        return self.head2(F.relu(self.head1(F.relu(skip_sum))))

    def forward(
        self, inputs: torch.Tensor, positions: torch.Tensor, genre: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits [B, T, K]: output t predicts the token that follows input t.

        inputs: [B, T] token ids (0..K, K = start token); positions: [B, T] bar position of the
        *predicted* step (0..63); genre: [B] or None.
        """
        x = self._inputs(inputs, positions)
        skip_sum = 0.0
        for layer in self.layers:
            x, skip = layer(x, genre)
            x = self.dropout(x)
            skip_sum = skip_sum + skip
        return self._head(skip_sum).transpose(1, 2)

    # ---- training helpers -------------------------------------------------------------------------

    def teacher_forced_inputs(
        self, tokens: torch.Tensor, steps_per_bar: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, positions) [B, T] for targets `tokens` [B, T]: inputs are tokens shifted right after
        a start token; positions are the targets' steps in their bar."""
        batch, length = tokens.shape
        start = torch.full((batch, 1), self.start_token, dtype=tokens.dtype, device=tokens.device)
        inputs = torch.cat([start, tokens[:, :-1]], dim=1)
        positions = (torch.arange(length, device=tokens.device) % steps_per_bar).expand(batch, length)
        return inputs, positions

    def loss(
        self, tokens: torch.Tensor, steps_per_bar: int, genre: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean cross-entropy per step (nats) over `tokens` [B, T], and accuracy."""
        inputs, positions = self.teacher_forced_inputs(tokens, steps_per_bar)
        logits = self(inputs, positions, genre)  # [B, T, K]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1))
        accuracy = (logits.argmax(-1) == tokens).float().mean()
        return loss, {"nll": float(loss.detach()), "accuracy": float(accuracy)}

    # ---- generation ------------------------------------------------------------------------------

    def _check_generate_args(
        self, call: torch.Tensor, steps_per_bar: int, genre: torch.Tensor | None
    ) -> None:
        if call.dim() != 2:
            raise ValueError(f"call tokens must have shape [batch, steps], got {tuple(call.shape)}")
        if call.numel() and (call.min() < 0 or call.max() >= self.config.num_classes):
            raise ValueError(f"call tokens must be in 0..{self.config.num_classes - 1}")
        if not 1 <= steps_per_bar <= MAX_STEPS_PER_BAR:
            raise ValueError(f"steps_per_bar must be 1..{MAX_STEPS_PER_BAR}, got {steps_per_bar}")
        if (
            genre is not None
            and self.config.num_genres
            and (genre.min() < 0 or genre.max() >= self.config.num_genres)
        ):
            raise ValueError(f"genre index must be in 0..{self.config.num_genres - 1}")

    @staticmethod
    def _choose(
        logits: torch.Tensor,
        temperature: float,
        generator: torch.Generator | None,
        top_p: float = 1.0,
        cache: torch.Tensor | None = None,
        cache_weight: float = 0.0,
    ) -> torch.Tensor:
        """logits [B, K] -> tokens [B]; temperature <= 0 means argmax. With a cache [B, K] (bar_cache)
        the distribution is (1 - cache_weight) * softmax(logits / T) + cache_weight * cache (the
        mixture of a cache language model, Grave et al. 2017). top_p < 1 then samples from the
        smallest set of most likely tokens whose probability reaches top_p (nucleus sampling,
        Holtzman et al. 2020); one draw a row either way, so seeded runs stay comparable."""
        if temperature <= 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits / temperature, dim=-1)
        if cache is not None and cache_weight > 0:
            probs = (1.0 - cache_weight) * probs + cache_weight * cache
        if top_p < 1.0:
            ordered, order = probs.sort(dim=-1, descending=True)
            outside = ordered.cumsum(-1) - ordered >= top_p  # the most likely token always stays
            probs = torch.zeros_like(probs).scatter(-1, order, ordered.masked_fill(outside, 0.0))
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    def _with_start(self, call: torch.Tensor) -> torch.Tensor:
        """The start token, then the call: [B, Tc] -> [B, Tc + 1] (the inputs that predict each step)."""
        start = torch.full((call.shape[0], 1), self.start_token, dtype=torch.long, device=call.device)
        return torch.cat([start, call.long()], dim=1)

    @torch.inference_mode()
    def generate_naive(
        self,
        call: torch.Tensor,
        steps: int,
        steps_per_bar: int,
        temperature: float = 1.0,
        genre: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        return_logits: bool = False,
        top_p: float = 1.0,
        cache_weight: float = 0.0,
        cache_bars: Sequence[int] = CACHE_BARS,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Continue `call` [B, Tc] by `steps` tokens, recomputing the full stack each step (reference path).

        Returns the new tokens [B, steps] (and their logits [B, steps, K] with return_logits).
        cache_weight > 0 mixes in the bar cache (`bar_cache` of `cache_bars`, see `_choose`)."""
        self._check_generate_args(call, steps_per_bar, genre)
        batch, call_len = call.shape
        history = self._with_start(call)  # [B, Tc + 1]
        field = self.config.receptive_field
        out, all_logits = [], []
        for _ in range(steps):
            window = history[:, -field:]
            first = history.shape[1] - window.shape[1]  # absolute index of window[:, 0]
            # input i predicts absolute step (first + i); its bar position:
            positions = (
                torch.arange(first, first + window.shape[1], device=call.device) % steps_per_bar
            ).expand(batch, -1)
            logits = self(window, positions, genre)[:, -1]  # [B, K]
            cache = bar_cache(history[:, 1:], steps_per_bar, cache_bars) if cache_weight > 0 else None
            token = self._choose(logits, temperature, generator, top_p, cache, cache_weight)
            out.append(token)
            all_logits.append(logits)
            history = torch.cat([history, token.unsqueeze(1)], dim=1)
        tokens = torch.stack(out, dim=1) if out else call.new_zeros((batch, 0))
        if return_logits:
            return tokens, torch.stack(all_logits, dim=1)
        return tokens

    @torch.inference_mode()
    def prime(
        self, call: torch.Tensor, steps_per_bar: int, genre: torch.Tensor | None = None
    ) -> WaveNetCache:
        """A cache holding every layer's past inputs after reading the start token and `call` [B, Tc]."""
        self._check_generate_args(call, steps_per_bar, genre)
        batch, call_len = call.shape
        inputs = self._with_start(call)  # [B, Tc + 1]
        positions = (torch.arange(call_len + 1, device=call.device) % steps_per_bar).expand(batch, -1)
        cache = WaveNetCache(self, batch, call.device, genre, steps_per_bar, position=call_len)
        x = self._inputs(inputs[:, :-1], positions[:, :-1])  # all but the newest input go to the queues
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            cache.fill(index, x)
            if x.shape[-1] and index < last:
                x = layer.residual_out(x, genre)
        cache.pending = inputs[:, -1]
        return cache

    @torch.inference_mode()
    def generate(
        self,
        call: torch.Tensor,
        steps: int,
        steps_per_bar: int,
        temperature: float = 1.0,
        genre: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        return_logits: bool = False,
        top_p: float = 1.0,
        cache_weight: float = 0.0,
        cache_bars: Sequence[int] = CACHE_BARS,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Continue `call` [B, Tc] by `steps` tokens with per-layer queues (Fast WaveNet): O(layers) a step.

        Same outputs as generate_naive for the same generator state. Returns tokens [B, steps]
        (and logits [B, steps, K] with return_logits)."""
        cache = self.prime(call, steps_per_bar, genre)
        out, all_logits = [], []
        history = call.long()
        for _ in range(steps):
            logits = cache.step_logits()
            copies = bar_cache(history, steps_per_bar, cache_bars) if cache_weight > 0 else None
            token = self._choose(logits, temperature, generator, top_p, copies, cache_weight)
            if cache_weight > 0:
                history = torch.cat([history, token.unsqueeze(1)], dim=1)
            cache.pending = token
            out.append(token)
            all_logits.append(logits)
        tokens = torch.stack(out, dim=1) if out else call.new_zeros((call.shape[0], 0)).long()
        if return_logits:
            return tokens, torch.stack(all_logits, dim=1)
        return tokens


def bar_cache(
    history: torch.Tensor, steps_per_bar: int, bars: Sequence[int] = CACHE_BARS
) -> torch.Tensor | None:
    """The bar cache [B, K]: for the step after `history` [B, T] (tokens so far, call first), the mean
    one-hot of the tokens exactly 1, 2 and 4 bars back (`bars`; those inside the history): a melody
    repeats its bars and its phrases, and a small WaveNet under-copies them (see
    models/continuation/diagnostics.py). None when no lag reaches into the history."""
    length = history.shape[1]
    picks = [history[:, length - b * steps_per_bar] for b in bars if 0 < b * steps_per_bar <= length]
    if not picks:
        return None
    stacked = torch.stack(picks, dim=1)  # [B, lags]
    out = torch.zeros(history.shape[0], NUM_CLASSES, device=history.device)
    return out.scatter_add_(1, stacked, torch.full(stacked.shape, 1.0 / len(picks), device=history.device))


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().float().cpu().numpy())


def _step_weights(model: MelodyWaveNet) -> dict:
    """The fused NumPy weights of the cached step, rebuilt only when a parameter has changed."""
    parameters = list(model.parameters())
    version = tuple((p._version, p.data_ptr()) for p in parameters)
    cached = getattr(model, "_step_weights_cache", None)
    if cached is not None and cached[0] == version:
        return cached[1]
    layers = model.layers
    weights = {
        "token": _numpy(model.token_embedding.weight),  # [K + 1, C]
        "position": _numpy(model.position_embedding.weight),  # [P, C]
        # both taps in one matmul: [x_past, x_now] [B, 2C] @ [2C, 2C]
        "taps": [
            _numpy(torch.cat([l.conv.weight[:, :, 0], l.conv.weight[:, :, 1]], dim=1).t()) for l in layers
        ],
        "tap_biases": [_numpy(l.conv.bias) for l in layers],  # [2C]
        "residuals": [_numpy(l.residual.weight.squeeze(-1).t()) for l in layers],  # [C, C]
        "residual_biases": [_numpy(l.residual.bias) for l in layers],
        "skip": _numpy(torch.cat([l.skip.weight.squeeze(-1) for l in layers], dim=1).t()),  # [L * C, S]
        "skip_bias": _numpy(sum(l.skip.bias for l in layers)),  # [S]
        "head1": _numpy(model.head1.weight.squeeze(-1).t()),  # [S, S]
        "head1_bias": _numpy(model.head1.bias),
        "head2": _numpy(model.head2.weight.squeeze(-1).t()),  # [S, K]
        "head2_bias": _numpy(model.head2.bias),
    }
    object.__setattr__(model, "_step_weights_cache", (version, weights))
    return weights


class WaveNetCache:
    """Fast-WaveNet state: per layer a queue of its last `dilation` inputs, plus fused step weights.

    The step runs in NumPy on the CPU (a step is ~40 tiny matmuls for a batch of one or a few rows, where
    NumPy's per-call overhead is a fraction of torch's). Per layer: one matmul for both conv taps (genre
    folded into the bias), the gate (sigmoid written as 0.5 + 0.5 tanh(x / 2)), one matmul for the
    residual; the skip projections of all layers are one matmul on the concatenated gate outputs.
    """

    def __init__(
        self,
        model: MelodyWaveNet,
        batch: int,
        device: torch.device,
        genre: torch.Tensor | None,
        steps_per_bar: int,
        position: int,
    ) -> None:
        self.model = model
        self.device = device
        self.steps_per_bar = steps_per_bar
        self.position = position  # absolute step (from the call's downbeat) that `pending` predicts
        self.channels = c = model.config.residual_channels
        self.queues: list[deque[np.ndarray]] = [
            deque(np.zeros((batch, c), dtype=np.float32) for _ in range(layer.dilation))
            for layer in model.layers
        ]
        self.pending: torch.Tensor = torch.zeros(batch, dtype=torch.long, device=device)

        weights = _step_weights(model)
        self.token_embedding, self.position_embedding = weights["token"], weights["position"]
        self.tap_weights, self.residual_weights = weights["taps"], weights["residuals"]
        self.residual_biases = weights["residual_biases"]
        self.skip_weight, self.skip_bias = weights["skip"], weights["skip_bias"]
        self.head1_weight, self.head1_bias = weights["head1"], weights["head1_bias"]
        self.head2_weight, self.head2_bias = weights["head2"], weights["head2_bias"]
        self.tap_biases = []  # [B, 2C] per layer, the genre folded in
        for layer, bias in zip(model.layers, weights["tap_biases"], strict=True):
            full = np.repeat(bias[None, :], batch, axis=0)
            if layer.genre is not None and genre is not None:
                full = full + _numpy(layer.genre(genre))
            self.tap_biases.append(np.ascontiguousarray(full))

    def fill(self, index: int, history: torch.Tensor) -> None:
        """Load a layer's queue from its input history [B, C, T] (zeros stand before the history)."""
        queue = self.queues[index]
        keep = history[:, :, max(0, history.shape[-1] - len(queue)) :].detach().float().cpu().numpy()
        for t in range(keep.shape[-1]):
            queue.append(np.ascontiguousarray(keep[:, :, t]))
            queue.popleft()

    def step_logits(self) -> torch.Tensor:
        """Feed `pending` (the newest input token) through every layer; logits [B, K] of the next step."""
        channels = self.channels
        tokens = self.pending.cpu().numpy()
        x = (
            self.token_embedding[tokens] + self.position_embedding[self.position % self.steps_per_bar]
        )  # [B, C]
        gated = []
        for index, queue in enumerate(self.queues):
            x_past = queue.popleft()  # x[t - dilation]
            queue.append(x)
            pre = np.concatenate([x_past, x], axis=1) @ self.tap_weights[index] + self.tap_biases[index]
            z = np.tanh(pre[:, :channels]) * (0.5 + 0.5 * np.tanh(0.5 * pre[:, channels:]))  # [B, C]
            gated.append(z)
            x = x + (z @ self.residual_weights[index] + self.residual_biases[index])
        skip_sum = np.concatenate(gated, axis=1) @ self.skip_weight + self.skip_bias  # [B, S]
        hidden = np.maximum(np.maximum(skip_sum, 0.0) @ self.head1_weight + self.head1_bias, 0.0)
        self.position += 1
        return torch.from_numpy(hidden @ self.head2_weight + self.head2_bias).to(self.device)  # [B, K]


def checkpoint_dict(
    model: MelodyWaveNet, genres: tuple[str, ...] | list[str], extra: dict | None = None
) -> dict:
    """What a .pt holds: config, encoding, genres and weights (loadable with weights_only=True)."""
    return checkpoint_io.checkpoint_dict("wavenet", model, ENCODING_NAME, genres, extra)


def model_from_checkpoint(checkpoint: dict, device: str | torch.device = "cpu") -> MelodyWaveNet:
    """Rebuild the model a checkpoint_dict describes, in eval mode."""
    return checkpoint_io.rebuild(checkpoint, "wavenet", MelodyWaveNet, WaveNetConfig, device)
