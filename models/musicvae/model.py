"""MusicVAE (Roberts et al. 2018) for 90-class melody tokens: flat and hierarchical decoders.

Tokens: 0 = hold (no event), 1 = note-off, 2..89 = MIDI pitch 21..108; 16 steps per 4/4 bar.

- Encoder: bidirectional LSTM over the whole sequence; the last layer's final forward and backward
  states give mu and sigma (softplus) of a diagonal Gaussian posterior q(z|x).
- Flat decoder: z -> tanh dense -> initial LSTM states; each step reads [one_hot(previous token), z].
- Hierarchical decoder: z -> conductor LSTM (one step a bar, zero inputs) -> a bar embedding c_b;
  each bar's core LSTM starts from tanh dense(c_b) and reads [one_hot(previous token), c_b].
- Loss: sum over steps of cross-entropy + beta * max(KL - free_bits * ln 2, 0), with
  beta = (1 - beta_rate ** step) * max_beta, as in Magenta's music_vae.
- Scheduled sampling (inverse sigmoid, p = 1 - k / (k + exp(step / k))) is applied in parallel
  (Duckworth et al. 2019): one teacher-forced pass without gradients draws the model's own samples,
  and each previous-token input is replaced by that sample with probability p. This is an
  approximation of Magenta's step-by-step sampling that keeps training on the fused LSTM.

Generation (`decode`, `interpolate`, `sample`) runs batched under torch.no_grad(): one LSTM call a
step for the whole batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from musebridge.models.common.checkpoint_io import read_checkpoint

NUM_CLASSES = 90
HOLD, NOTE_OFF, FIRST_PITCH_TOKEN = 0, 1, 2
ENCODING_NAME = "melody90"


@dataclass
class MusicVAEConfig:
    """Shape and loss settings of one MusicVAE; plain types only (stored in checkpoints)."""

    bars: int = 2
    steps_per_bar: int = 16
    num_classes: int = NUM_CLASSES
    z_size: int = 128
    encoder_size: int = 256
    encoder_layers: int = 1
    decoder_size: int = 256
    decoder_layers: int = 2
    hierarchical: bool = False
    conductor_size: int = 256
    conductor_layers: int = 2
    max_beta: float = 0.2
    beta_rate: float = 0.99999
    free_bits: float = 0.0
    sampling_schedule: str = "inverse_sigmoid"  # "inverse_sigmoid" | "constant" | "none"
    sampling_rate: float = 1000.0

    @property
    def steps(self) -> int:
        return self.bars * self.steps_per_bar

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MusicVAEConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown MusicVAE config keys: {sorted(unknown)}")
        return cls(**values)


# The paper's cat-mel_2bar_small shape, and the CPU-sized variants the shipped checkpoints use.
PRESETS: dict[str, MusicVAEConfig] = {
    "mel_2bar_paper": MusicVAEConfig(
        bars=2, z_size=256, encoder_size=512, decoder_size=256, decoder_layers=2, max_beta=0.2
    ),
    "mel_2bar_cpu": MusicVAEConfig(
        bars=2, z_size=128, encoder_size=256, decoder_size=256, decoder_layers=2, max_beta=0.2,
        beta_rate=0.9995, free_bits=64.0,
    ),
    "hier_mel_4bar_cpu": MusicVAEConfig(
        bars=4, z_size=128, encoder_size=256, decoder_size=256, decoder_layers=2, hierarchical=True,
        conductor_size=256, conductor_layers=2, max_beta=0.2, beta_rate=0.9995, free_bits=96.0,
    ),
}


def _one_hot_inputs(tokens: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, T) int tokens -> (B, T, C) float; the start index `num_classes` maps to a zero vector."""
    return F.one_hot(tokens, num_classes + 1)[..., :num_classes].float()


def _shift_right(tokens: torch.Tensor, start_index: int) -> torch.Tensor:
    """Previous-token inputs: (B, T) -> (B, T) with the start index first."""
    start = torch.full_like(tokens[:, :1], start_index)
    return torch.cat([start, tokens[:, :-1]], dim=1)


def _initial_state(
    dense: nn.Linear, source: torch.Tensor, layers: int, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """tanh(dense(source)) (N, layers*2*size) -> LSTM (h0, c0), each (layers, N, size)."""
    flat = torch.tanh(dense(source)).view(source.shape[0], layers, 2, size)
    h0 = flat[:, :, 0].transpose(0, 1).contiguous()
    c0 = flat[:, :, 1].transpose(0, 1).contiguous()
    return h0, c0


def _choose(logits: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.Tensor:
    """(N, C) logits -> (N,) tokens: argmax at temperature 0, else a softmax(logits / T) draw."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


class _LSTMStepper:
    """Step-by-step inference of an nn.LSTM whose input is [one_hot(token), constant conditioning].

    The one-hot part of the first layer's input projection becomes a row lookup and the constant part
    is projected once, so a step costs one hidden-to-hidden matmul per layer (plus the input matmul of
    layers > 0). Gate order follows torch: input, forget, cell, output.
    """

    def __init__(self, lstm: nn.LSTM, num_classes: int) -> None:
        self.layers = lstm.num_layers
        first = lstm.weight_ih_l0
        self.num_classes = num_classes
        self.token_rows = first[:, :num_classes].t().contiguous()  # (C, 4H)
        self.condition_weight = first[:, num_classes:].t()  # (E, 4H)
        self.first_bias = lstm.bias_ih_l0 + lstm.bias_hh_l0
        upper = range(1, self.layers)
        self.hidden_weights = [getattr(lstm, f"weight_hh_l{k}").t().contiguous() for k in range(self.layers)]
        self.input_weights = [getattr(lstm, f"weight_ih_l{k}").t().contiguous() for k in upper]
        self.biases = [getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}") for k in upper]

    def condition(self, conditioning: torch.Tensor) -> torch.Tensor:
        """(N, E) constant inputs -> (N, 4H) first-layer gate contribution, biases included."""
        return torch.addmm(self.first_bias, conditioning, self.condition_weight)

    def step(
        self, gates_in: torch.Tensor, h: list[torch.Tensor], c: list[torch.Tensor]
    ) -> torch.Tensor:
        """One step for all layers; h and c (lists of (N, H)) are updated in place; returns the top h."""
        x = h[0]
        for k in range(self.layers):
            if k == 0:
                gates = torch.addmm(gates_in, h[0], self.hidden_weights[0])
            else:
                gates = torch.addmm(self.biases[k - 1], x, self.input_weights[k - 1])
                gates.addmm_(h[k], self.hidden_weights[k])
            i, f, g, o = gates.chunk(4, dim=1)
            c[k] = torch.sigmoid(f) * c[k] + torch.sigmoid(i) * torch.tanh(g)
            h[k] = torch.sigmoid(o) * torch.tanh(c[k])
            x = h[k]
        return x


class BidirectionalEncoder(nn.Module):
    """q(z|x): bi-LSTM over one-hot tokens -> (mu, sigma), each (B, z)."""

    def __init__(self, config: MusicVAEConfig) -> None:
        super().__init__()
        self.num_classes = config.num_classes
        self.lstm = nn.LSTM(
            config.num_classes, config.encoder_size, num_layers=config.encoder_layers,
            batch_first=True, bidirectional=True,
        )
        self.to_mu = nn.Linear(2 * config.encoder_size, config.z_size)
        self.to_sigma = nn.Linear(2 * config.encoder_size, config.z_size)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = _one_hot_inputs(tokens, self.num_classes)  # (B, T, C)
        _, (h_n, _) = self.lstm(inputs)  # h_n: (layers*2, B, H)
        final = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (B, 2H): last layer, forward + backward
        mu = self.to_mu(final)
        sigma = F.softplus(self.to_sigma(final))
        return mu, sigma


class FlatDecoder(nn.Module):
    """p(x|z) with one LSTM over all steps; inputs [one_hot(previous token), z]."""

    def __init__(self, config: MusicVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.init_state = nn.Linear(config.z_size, config.decoder_layers * 2 * config.decoder_size)
        self.lstm = nn.LSTM(
            config.num_classes + config.z_size, config.decoder_size,
            num_layers=config.decoder_layers, batch_first=True,
        )
        self.to_logits = nn.Linear(config.decoder_size, config.num_classes)

    def forward(self, z: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, C) for previous-token inputs (B, T)."""
        cfg = self.config
        state = _initial_state(self.init_state, z, cfg.decoder_layers, cfg.decoder_size)
        steps = previous.shape[1]
        inputs = torch.cat(
            [_one_hot_inputs(previous, cfg.num_classes), z[:, None, :].expand(-1, steps, -1)], dim=-1
        )  # (B, T, C + z)
        outputs, _ = self.lstm(inputs, state)  # (B, T, H)
        return self.to_logits(outputs)

    @torch.no_grad()
    def generate(
        self, z: torch.Tensor, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Autoregressive tokens (B, T) from z (B, z): argmax at temperature 0."""
        cfg = self.config
        stepper = _LSTMStepper(self.lstm, cfg.num_classes)
        h0, c0 = _initial_state(self.init_state, z, cfg.decoder_layers, cfg.decoder_size)
        h, c = list(h0.unbind(0)), list(c0.unbind(0))
        from_z = stepper.condition(z)  # (B, 4H)
        out_weight, out_bias = self.to_logits.weight.t(), self.to_logits.bias
        tokens = torch.empty(z.shape[0], cfg.steps, dtype=torch.long, device=z.device)
        gates_in = from_z  # the start input is the zero vector
        for t in range(cfg.steps):
            top = stepper.step(gates_in, h, c)
            chosen = _choose(torch.addmm(out_bias, top, out_weight), temperature, generator)
            tokens[:, t] = chosen
            gates_in = from_z + stepper.token_rows[chosen]
        return tokens


class HierarchicalDecoder(nn.Module):
    """p(x|z) with a conductor LSTM over bars and a core LSTM per bar (shared weights)."""

    def __init__(self, config: MusicVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.conductor_init = nn.Linear(config.z_size, config.conductor_layers * 2 * config.conductor_size)
        self.conductor = nn.LSTM(
            1, config.conductor_size, num_layers=config.conductor_layers, batch_first=True
        )
        self.core_init = nn.Linear(config.conductor_size, config.decoder_layers * 2 * config.decoder_size)
        self.core = nn.LSTM(
            config.num_classes + config.conductor_size, config.decoder_size,
            num_layers=config.decoder_layers, batch_first=True,
        )
        self.to_logits = nn.Linear(config.decoder_size, config.num_classes)

    def bar_embeddings(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, z) -> conductor outputs (B, bars, conductor_size)."""
        cfg = self.config
        state = _initial_state(self.conductor_init, z, cfg.conductor_layers, cfg.conductor_size)
        zeros = torch.zeros(z.shape[0], cfg.bars, 1, device=z.device)
        embeddings, _ = self.conductor(zeros, state)
        return embeddings

    def forward(self, z: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, C); all bars run as one batch of B*bars sequences."""
        cfg = self.config
        batch = z.shape[0]
        embeddings = self.bar_embeddings(z).reshape(batch * cfg.bars, cfg.conductor_size)  # (B*bars, E)
        state = _initial_state(self.core_init, embeddings, cfg.decoder_layers, cfg.decoder_size)
        bar_previous = previous.reshape(batch * cfg.bars, cfg.steps_per_bar)  # (B*bars, S)
        inputs = torch.cat(
            [
                _one_hot_inputs(bar_previous, cfg.num_classes),
                embeddings[:, None, :].expand(-1, cfg.steps_per_bar, -1),
            ],
            dim=-1,
        )  # (B*bars, S, C + E)
        outputs, _ = self.core(inputs, state)  # (B*bars, S, H)
        return self.to_logits(outputs).reshape(batch, cfg.steps, cfg.num_classes)

    @torch.no_grad()
    def generate(
        self, z: torch.Tensor, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Autoregressive tokens (B, T), bar after bar; each bar starts from its conductor state."""
        cfg = self.config
        batch = z.shape[0]
        embeddings = self.bar_embeddings(z)  # (B, bars, E)
        stepper = _LSTMStepper(self.core, cfg.num_classes)
        out_weight, out_bias = self.to_logits.weight.t(), self.to_logits.bias
        tokens = torch.empty(batch, cfg.steps, dtype=torch.long, device=z.device)
        chosen = None
        for bar in range(cfg.bars):
            embedding = embeddings[:, bar]  # (B, E)
            h0, c0 = _initial_state(self.core_init, embedding, cfg.decoder_layers, cfg.decoder_size)
            h, c = list(h0.unbind(0)), list(c0.unbind(0))
            from_bar = stepper.condition(embedding)  # (B, 4H)
            # the first step of a bar reads the previous bar's last token (zero vector at the start)
            gates_in = from_bar if chosen is None else from_bar + stepper.token_rows[chosen]
            for s in range(cfg.steps_per_bar):
                top = stepper.step(gates_in, h, c)
                chosen = _choose(torch.addmm(out_bias, top, out_weight), temperature, generator)
                tokens[:, bar * cfg.steps_per_bar + s] = chosen
                gates_in = from_bar + stepper.token_rows[chosen]
        return tokens


def slerp(z_a: torch.Tensor, z_b: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: z_a, z_b (z,) and alphas (N,) -> (N, z); linear when nearly parallel."""
    a_norm = z_a / z_a.norm().clamp_min(1e-8)
    b_norm = z_b / z_b.norm().clamp_min(1e-8)
    omega = torch.arccos((a_norm * b_norm).sum().clamp(-1.0, 1.0))
    alphas = alphas[:, None]
    if float(omega) < 1e-4:
        return (1 - alphas) * z_a + alphas * z_b
    sin_omega = torch.sin(omega)
    return (torch.sin((1 - alphas) * omega) / sin_omega) * z_a + (torch.sin(alphas * omega) / sin_omega) * z_b


class MusicVAE(nn.Module):
    """Encoder + decoder + the MusicVAE loss; generation helpers work on token tensors."""

    def __init__(self, config: MusicVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = BidirectionalEncoder(config)
        self.decoder: FlatDecoder | HierarchicalDecoder = (
            HierarchicalDecoder(config) if config.hierarchical else FlatDecoder(config)
        )
        # Attribute vectors (name -> (z,)), filled after training: mean z of the top quartile of an
        # attribute minus the mean z of its bottom quartile.
        self.attribute_vectors: dict[str, torch.Tensor] = {}

    # -- schedules --------------------------------------------------------------------------------
    def beta(self, step: int) -> float:
        cfg = self.config
        return (1.0 - cfg.beta_rate**step) * cfg.max_beta

    def sampling_probability(self, step: int) -> float:
        cfg = self.config
        if cfg.sampling_schedule == "none":
            return 0.0
        if cfg.sampling_schedule == "constant":
            return cfg.sampling_rate
        k = cfg.sampling_rate
        return 1.0 - k / (k + math.exp(min(step / k, 700.0)))

    # -- training ---------------------------------------------------------------------------------
    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens (B, T) -> posterior (mu, sigma), each (B, z)."""
        self._check_tokens(tokens)
        return self.encoder(tokens)

    def teacher_forced_logits(self, z: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, C) of each step given the true previous tokens."""
        return self.decoder(z, _shift_right(tokens, self.config.num_classes))

    def loss(
        self, tokens: torch.Tensor, step: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """MusicVAE objective on a batch of tokens (B, T); returns loss and its parts (scalars)."""
        cfg = self.config
        mu, sigma = self.encode(tokens)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device)
        z = mu + sigma * noise  # (B, z)
        previous = _shift_right(tokens, cfg.num_classes)  # (B, T)
        probability = self.sampling_probability(step) if self.training else 0.0
        if probability > 0:
            with torch.no_grad():
                draft = self.decoder(z, previous)  # (B, T, C)
                drawn = torch.multinomial(
                    torch.softmax(draft.reshape(-1, cfg.num_classes), dim=-1), 1, generator=generator
                ).view_as(tokens)
                use_drawn = torch.rand(tokens.shape, generator=generator, device=tokens.device) < probability
                mixed = torch.where(use_drawn, drawn, tokens)
            previous = _shift_right(mixed, cfg.num_classes)
        logits = self.decoder(z, previous)  # (B, T, C)
        cross_entropy = F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none")  # (B, T)
        reconstruction = cross_entropy.sum(dim=1)  # (B,)
        kl = (0.5 * (mu.pow(2) + sigma.pow(2) - 1.0) - torch.log(sigma.clamp_min(1e-8))).sum(dim=1)  # (B,)
        free_nats = cfg.free_bits * math.log(2.0)
        kl_cost = torch.clamp(kl - free_nats, min=0.0)
        beta = self.beta(step)
        loss = (reconstruction + beta * kl_cost).mean()
        accuracy = (logits.argmax(dim=-1) == tokens).float().mean()
        return {
            "loss": loss,
            "reconstruction": reconstruction.mean().detach(),
            "kl": kl.mean().detach(),
            "kl_bits": (kl.mean() / math.log(2.0)).detach(),
            "beta": torch.tensor(beta),
            "sampling_probability": torch.tensor(probability),
            "accuracy": accuracy.detach(),
        }

    # -- generation -------------------------------------------------------------------------------
    @torch.no_grad()
    def decode(
        self, z: torch.Tensor, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z (B, z) -> tokens (B, T); argmax at temperature 0."""
        return self.decoder.generate(z, temperature, generator)

    @torch.no_grad()
    def reconstruct(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (B, T) -> argmax decoding of their posterior means (B, T)."""
        mu, _ = self.encode(tokens)
        return self.decode(mu)

    @torch.no_grad()
    def interpolate(
        self, tokens_a: torch.Tensor, tokens_b: torch.Tensor, steps: int, temperature: float = 0.0,
        generator: torch.Generator | None = None, include_endpoints: bool = False,
    ) -> torch.Tensor:
        """`steps` sequences (steps, T) between A (T,) and B (T,) by slerp of their posterior means.

        With include_endpoints the alphas run 0..1 inclusive; otherwise the endpoints are left out
        (alphas i/(steps+1)). All sequences are decoded in one batch.
        """
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        mu, _ = self.encode(torch.stack([tokens_a, tokens_b]))
        if include_endpoints:
            alphas = torch.linspace(0.0, 1.0, steps, device=mu.device) if steps > 1 else mu.new_zeros(1)
        else:
            alphas = torch.arange(1, steps + 1, device=mu.device, dtype=mu.dtype) / (steps + 1)
        return self.decode(slerp(mu[0], mu[1], alphas), temperature, generator)

    @torch.no_grad()
    def sample(
        self, count: int, temperature: float = 1.0, generator: torch.Generator | None = None,
        attribute: str | None = None, attribute_amount: float = 0.0,
    ) -> torch.Tensor:
        """`count` sequences (count, T) from the prior z ~ N(0, I), optionally moved along an attribute."""
        device = next(self.parameters()).device
        z = torch.randn(count, self.config.z_size, generator=generator, device=device)
        if attribute is not None:
            z = self.shift_attribute(z, attribute, attribute_amount)
        return self.decode(z, temperature, generator)

    def shift_attribute(self, z: torch.Tensor, attribute: str, amount: float) -> torch.Tensor:
        """z + amount * attribute vector (e.g. 'note_density')."""
        if attribute not in self.attribute_vectors:
            known = ", ".join(sorted(self.attribute_vectors)) or "none"
            raise KeyError(f"no attribute vector {attribute!r} (known: {known})")
        return z + amount * self.attribute_vectors[attribute].to(z.device)

    def _check_tokens(self, tokens: torch.Tensor) -> None:
        cfg = self.config
        if tokens.dim() != 2 or tokens.shape[1] != cfg.steps:
            raise ValueError(f"expected tokens of shape (B, {cfg.steps}), got {tuple(tokens.shape)}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= cfg.num_classes):
            raise ValueError(f"tokens must be in 0..{cfg.num_classes - 1}")


# -- checkpoints ----------------------------------------------------------------------------------
CHECKPOINT_FORMAT = "musebridge.musicvae/1"


def checkpoint_dict(
    model: MusicVAE, *, genres: list[str], training: dict[str, Any], half: bool = True
) -> dict[str, Any]:
    """A weights-only-loadable checkpoint: config, state_dict (float16 if half), metadata."""
    state = {k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
             for k, v in model.state_dict().items()}
    return {
        "format": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        "state_dict": state,
        "encoding": ENCODING_NAME,
        "genres": list(genres),
        "training": training,
        "attribute_vectors": {k: v.detach().cpu().float() for k, v in model.attribute_vectors.items()},
    }


def model_from_checkpoint(checkpoint: dict[str, Any], device: str | torch.device = "cpu") -> MusicVAE:
    """Rebuild a MusicVAE (float32, eval mode) from `checkpoint_dict` output."""
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"not a MusicVAE checkpoint (format {checkpoint.get('format')!r})")
    if checkpoint.get("encoding") != ENCODING_NAME:
        raise ValueError(f"unsupported encoding {checkpoint.get('encoding')!r}")
    model = MusicVAE(MusicVAEConfig.from_dict(dict(checkpoint["config"])))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in checkpoint["state_dict"].items()})
    model.attribute_vectors = {k: v.float() for k, v in checkpoint.get("attribute_vectors", {}).items()}
    return model.to(device).eval()


def load_checkpoint(path: str, device: str | torch.device = "cpu") -> tuple[MusicVAE, dict[str, Any]]:
    """Load a shipped .pt (torch.load(weights_only=True)) -> (model, checkpoint dict)."""
    checkpoint = read_checkpoint(path, "cpu", "MusicVAE")
    return model_from_checkpoint(checkpoint, device), checkpoint
