"""MusicVAE as a PhraseModel for the bridge: modes `interpolate` and `sample`.

Phrases of any length and meter are handled as a token stream at 4 steps per quarter note: the stream
is cut into windows of the model's length (32 steps for a 2-bar model), every window of every
requested point is decoded in one batch, and the result is cut back to the requested bars. Clips
shorter than the request loop, as clips do in a DAW.

Velocities are carried over from the inputs: in `interpolate` each note's velocity blends the
velocities that A and B have at that point, (1 - position) * v_A + position * v_B; in `sample` they
come from the played phrase when it has notes, else from the `velocity` option.

Registry: `register_lazy("musicvae", "musebridge.models.musicvae.phrase_model:create_musicvae")`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musebridge.core.model_protocol import ModelRequest
from musebridge.core.music import Meter, Note, Phrase
from musebridge.models import CHECKPOINT_DIR
from musebridge.models.common.threads import cpu_threads
from musebridge.models.encoding import melody
from musebridge.models.musicvae.model import MusicVAE, load_checkpoint, slerp

SHIPPED_CHECKPOINTS = {2: "musicvae_2bar.pt", 4: "musicvae_4bar.pt"}


def shipped_checkpoint(bars: int) -> Path:
    """Path of the shipped checkpoint for 2- or 4-bar windows."""
    if bars not in SHIPPED_CHECKPOINTS:
        raise ValueError(f"shipped MusicVAE checkpoints cover {sorted(SHIPPED_CHECKPOINTS)} bars, not {bars}")
    return CHECKPOINT_DIR / SHIPPED_CHECKPOINTS[bars]


def looped(phrase: Phrase, total_beats: float) -> list[Note]:
    """The phrase's notes repeated every phrase.length_beats until total_beats."""
    notes: list[Note] = []
    length = phrase.length_beats
    repeats = max(1, math.ceil(total_beats / length))
    for index in range(repeats):
        notes += [note.shifted(index * length) for note in phrase.clipped().notes]
    return [n for n in notes if n.start < total_beats]


def blend_velocities(from_a: Phrase, from_b: Phrase, position: float) -> Phrase:
    """The notes of from_a with velocities (1 - position) * v_a + position * v_b (same notes in both)."""
    notes = tuple(
        replace(a, velocity=max(1, min(127, round((1.0 - position) * a.velocity + position * b.velocity))))
        for a, b in zip(from_a.notes, from_b.notes, strict=True)
    )
    return replace(from_a, notes=notes)


class MusicVAEPhraseModel:
    """A loaded MusicVAE serving interpolate and sample; thread-compatible (one job at a time)."""

    name = "musicvae"
    modes = frozenset({"interpolate", "sample"})

    def __init__(
        self, model: MusicVAE, *, interpolate_temperature: float = 0.0,
        velocity: int = melody.DEFAULT_VELOCITY, info: Mapping[str, Any] | None = None, threads: int = 1,
    ) -> None:
        self.model = model.eval()
        self.threads = threads  # CPU torch threads while generating (0: torch's setting)
        self.device = next(model.parameters()).device
        self.interpolate_temperature = interpolate_temperature
        self.velocity = velocity
        self.info = dict(info or {})

    @property
    def window_steps(self) -> int:
        return self.model.config.steps

    # -- tokens <-> phrases -----------------------------------------------------------------------
    def _windows(self, phrase: Phrase, total_steps: int, meter: Meter) -> np.ndarray:
        """Tokens of the (looped) phrase, (windows, window_steps), covering total_steps."""
        count = math.ceil(total_steps / self.window_steps)
        steps = count * self.window_steps
        bars = math.ceil(steps / melody.steps_per_bar(meter))
        total_beats = bars * meter.beats_per_bar
        tokens = melody.encode_notes(looped(phrase, total_beats), meter, bars)[:steps]
        return tokens.reshape(count, self.window_steps)

    def _to_phrase(
        self, tokens: np.ndarray, bars: int, meter: Meter, velocity_source: Phrase | None
    ) -> Phrase:
        steps = bars * melody.steps_per_bar(meter)
        return melody.decode_tokens(tokens.reshape(-1)[:steps], meter, velocity_source, self.velocity)

    # -- batched operations -----------------------------------------------------------------------
    @torch.no_grad()
    def interpolate_phrases(
        self, clip_a: Phrase, clip_b: Phrase, positions: Sequence[float], bars: int,
        meter: Meter | None = None, temperature: float | None = None, seed: int = 0,
    ) -> list[Phrase]:
        """One phrase of `bars` bars per position in 0..1 (0 = A, 1 = B), all decoded in one batch."""
        return self.interpolate_many([(clip_a, clip_b, p) for p in positions], bars, meter or clip_a.meter,
                                     temperature, seed)

    @torch.no_grad()
    def interpolate_many(
        self, points: Sequence[tuple[Phrase, Phrase, float]], bars: int, meter: Meter,
        temperature: float | None = None, seed: int = 0,
    ) -> list[Phrase]:
        """One phrase of `bars` bars per (clip A, clip B, position 0..1): every clip encoded in one
        batch ((2 * N * W, S) tokens, W windows a phrase) and every point decoded in one batch
        ((N * W, z) latents), sampling with one generator seeded by `seed`."""
        if bars < 1:
            raise ValueError(f"bars must be >= 1, got {bars}")
        if not points:
            return []
        total_steps = bars * melody.steps_per_bar(meter)
        windows_a = [self._windows(a, total_steps, meter) for a, _b, _p in points]  # N x (W, S)
        windows_b = [self._windows(b, total_steps, meter) for _a, b, _p in points]
        count = windows_a[0].shape[0]
        tokens = torch.as_tensor(np.concatenate(windows_a + windows_b), device=self.device)  # (2NW, S)
        with cpu_threads(self.device, self.threads):
            mu, _ = self.model.encode(tokens)  # (2NW, z)
            alphas = torch.tensor([min(max(float(p), 0.0), 1.0) for _a, _b, p in points], device=self.device)
            half = len(points) * count
            paths = []
            for n in range(len(points)):
                for w in range(count):
                    start, end = mu[n * count + w], mu[half + n * count + w]
                    paths.append(slerp(start, end, alphas[n : n + 1])[0])
            z = torch.stack(paths)  # (N * W, z)
            generator = torch.Generator(device=self.device).manual_seed(seed)
            temperature = self.interpolate_temperature if temperature is None else temperature
            decoded = self.model.decode(z, temperature, generator)  # (N*W, S)
            decoded = decoded.view(len(points), -1).cpu().numpy()  # (N, W*S)
        total_beats = bars * meter.beats_per_bar
        phrases = []
        for row, alpha, (clip_a, clip_b, _p) in zip(decoded, alphas.tolist(), points, strict=True):
            source_a = Phrase(tuple(looped(clip_a, total_beats)), bars, meter)
            source_b = Phrase(tuple(looped(clip_b, total_beats)), bars, meter)
            with_a = self._to_phrase(row, bars, meter, source_a if source_a.notes else None)
            with_b = self._to_phrase(row, bars, meter, source_b if source_b.notes else source_a)
            phrases.append(blend_velocities(with_a, with_b, alpha) if source_a.notes else with_b)
        return phrases

    @torch.no_grad()
    def sample_phrases(
        self, count: int, bars: int, meter: Meter | None = None, temperature: float = 1.0, seed: int = 0,
        velocity_source: Phrase | None = None,
    ) -> list[Phrase]:
        """`count` phrases of `bars` bars from the prior; windows beyond the first are fresh samples."""
        if count < 1 or bars < 1:
            raise ValueError(f"count and bars must be >= 1, got {count} and {bars}")
        meter = meter or Meter()
        total_steps = bars * melody.steps_per_bar(meter)
        windows = math.ceil(total_steps / self.window_steps)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        with cpu_threads(self.device, self.threads):
            tokens = self.model.sample(count * windows, temperature=temperature, generator=generator)
        rows = tokens.view(count, -1).cpu().numpy()
        source = velocity_source if velocity_source is not None and velocity_source.notes else None
        return [self._to_phrase(row, bars, meter, source) for row in rows]

    # -- PhraseModel --------------------------------------------------------------------------------
    def generate_batch(self, requests: Sequence[ModelRequest]) -> list[Phrase]:
        """Each request's answer; interpolations of the same length and meter (many tracks' jobs due
        at one bar line) go through the encoder and the decoder together (interpolate_many), drawing
        with one generator seeded by the group's first request. Others run one by one."""
        answers: list[Phrase | None] = [None] * len(requests)
        groups: dict[tuple[int, Meter], list[int]] = {}
        for index, request in enumerate(requests):
            if request.mode == "interpolate" and request.bars >= 1:
                groups.setdefault((request.bars, request.phrase.meter), []).append(index)
            else:
                answers[index] = self.generate(request)
        for (bars, meter), indices in groups.items():
            points = [(requests[i].clip_a or requests[i].phrase, requests[i].clip_b or requests[i].phrase,
                       requests[i].position) for i in indices]
            phrases = self.interpolate_many(points, bars, meter, seed=requests[indices[0]].seed)
            for i, phrase in zip(indices, phrases, strict=True):
                answers[i] = phrase
        return [answer for answer in answers if answer is not None]

    def generate(self, request: ModelRequest) -> Phrase:
        """interpolate: A and B at request.position; sample: a prior sample at request.temperature."""
        meter = request.phrase.meter
        if request.mode == "interpolate":
            clip_a = request.clip_a or request.phrase
            clip_b = request.clip_b or request.phrase
            return self.interpolate_phrases(
                clip_a, clip_b, [request.position], request.bars, meter, seed=request.seed
            )[0]
        if request.mode == "sample":
            return self.sample_phrases(
                1, request.bars, meter, request.temperature, request.seed, velocity_source=request.phrase
            )[0]
        raise ValueError(f"musicvae serves {sorted(self.modes)}, not {request.mode!r}")


def load_phrase_model(
    checkpoint: str | Path, device: str = "cpu", **options: Any
) -> MusicVAEPhraseModel:
    """A MusicVAEPhraseModel from a checkpoint file."""
    model, saved = load_checkpoint(str(checkpoint), device)
    info = {"checkpoint": str(checkpoint), "config": saved["config"], "genres": saved.get("genres", [])}
    return MusicVAEPhraseModel(model, info=info, **options)


def create_musicvae(device: str, options: Mapping[str, Any]) -> MusicVAEPhraseModel:
    """Registry factory. Options: checkpoint (path) or bars (2|4, shipped checkpoint; default 2),
    interpolate_temperature (0 = argmax, default), velocity (for samples without a played phrase),
    threads (CPU torch threads while generating, default 1; 0 = torch's setting)."""
    from musebridge.registry import require_checkpoint

    known = {"checkpoint", "bars", "interpolate_temperature", "velocity", "threads"}
    unknown = set(options) - known
    if unknown:
        from musebridge.errors import UserError

        raise UserError(f"model 'musicvae': unknown option(s) {sorted(unknown)} (known: {sorted(known)})")
    path = options.get("checkpoint") or shipped_checkpoint(int(options.get("bars", 2)))
    require_checkpoint(path, model="musicvae")
    return load_phrase_model(
        path, device,
        interpolate_temperature=float(options.get("interpolate_temperature", 0.0)),
        velocity=int(options.get("velocity", melody.DEFAULT_VELOCITY)),
        threads=int(options.get("threads", 1)),
    )
