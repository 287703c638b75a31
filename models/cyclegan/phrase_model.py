"""The CycleGAN genre transfer as a PhraseModel (mode "transfer", target genre from request.genre).

A played phrase is cut into rolls of up to 4 bars (the model's phrase; 3/4 and 6/8 bars fit 4 to a
roll with padding, longer bars fewer), each roll is run through the generator toward the target
genre, binarised at 0.5 and decoded with velocities taken from the input notes it overlaps. Shorter
phrases are padded with silence; a silent chunk stays silent (nothing to re-voice).

Registry: `register_lazy("cyclegan", "musebridge.models.cyclegan.phrase_model:create_transfer_model")`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musebridge.core.model_protocol import ModelRequest
from musebridge.core.music import Note, Phrase
from musebridge.models import CHECKPOINT_DIR
from musebridge.models.common.threads import cpu_threads
from musebridge.models.cyclegan.model import CycleGAN, load_cyclegan
from musebridge.models.encoding import pianoroll


def shipped_checkpoints() -> list[Path]:
    """The CycleGAN checkpoints shipped with the package (cyclegan_<a>_<b>.pt), sorted."""
    return sorted(CHECKPOINT_DIR.glob("cyclegan_*.pt"))


class TransferPhraseModel:
    """Genre transfer toward any genre of the loaded pairs; satisfies PhraseModel."""

    name = "cyclegan"
    modes = frozenset({"transfer"})

    def __init__(
        self,
        pairs: Sequence[tuple[CycleGAN, tuple[str, str]]],
        device: str | torch.device = "cpu",
        threshold: float = 0.5,
        threads: int = 1,
    ):
        if not pairs:
            raise ValueError("a transfer model needs at least one trained genre pair")
        self.device = torch.device(device)
        self.threshold = threshold
        self.threads = threads
        self._generators: dict[str, torch.nn.Module] = {}
        for model, (genre_a, genre_b) in pairs:
            model.to(self.device).eval()
            self._generators.setdefault(genre_b, model.generator_ab)  # A -> B makes genre B
            self._generators.setdefault(genre_a, model.generator_ba)

    @property
    def genres(self) -> tuple[str, ...]:
        """Target genres this model can transfer to, sorted."""
        return tuple(sorted(self._generators))

    def generate(self, request: ModelRequest) -> Phrase:
        """The request's phrase re-voiced in request.genre, request.bars bars long, in its meter."""
        return self.generate_batch([request])[0]

    def generate_batch(self, requests: Sequence[ModelRequest]) -> list[Phrase]:
        """Each request's answer (as `generate` gives it), computed with one generator forward pass
        per target genre for every track's phrases together: rolls (N, 1, 64, 84) in, N = the
        requests' 4-bar chunks. Raises ValueError for a bad request (the whole batch)."""
        plans = [self._chunks(request) for request in requests]  # validates every request first
        by_genre: dict[str, list[tuple[int, int]]] = {}  # genre -> (request index, chunk index)
        for index, (genre, chunks) in enumerate(plans):
            by_genre.setdefault(genre, []).extend((index, k) for k in range(len(chunks)))
        decoded: dict[tuple[int, int], list[Note]] = {}
        for genre, keys in by_genre.items():
            if not keys:
                continue
            rolls = np.stack([
                pianoroll.encode_notes(plans[i][1][k][2], requests[i].phrase.meter, plans[i][1][k][1])
                for i, k in keys
            ])
            batch = torch.from_numpy(rolls.astype(np.float32)).unsqueeze(1).to(self.device)  # (N, 1, 64, 84)
            transferred = self._run(self._generators[genre], batch)  # (N, 64, 84) bool
            for (i, k), roll in zip(keys, transferred, strict=True):
                offset, bars, notes = plans[i][1][k]
                phrase = pianoroll.decode_roll(roll, requests[i].phrase.meter, bars, reference=notes)
                decoded[(i, k)] = [n.shifted(offset) for n in phrase.notes]
        answers = []
        for index, (request, (_genre, chunks)) in enumerate(zip(requests, plans, strict=True)):
            notes = [n for k in range(len(chunks)) for n in decoded[(index, k)]]
            answer = Phrase(notes=tuple(notes), bars=request.bars, meter=request.phrase.meter)
            answers.append(answer.clipped())
        return answers

    def _chunks(self, request: ModelRequest) -> tuple[str, list[tuple[float, int, list[Note]]]]:
        """(target genre, [(offset beats, bars, notes relative to offset)]) of a request's roll-sized
        chunks that hold notes; ValueError for a request this model cannot serve."""
        if request.mode not in self.modes:
            raise ValueError(f"model {self.name!r} serves mode 'transfer', not {request.mode!r}")
        genre = request.genre.strip().lower()
        if not genre:
            raise ValueError(f"transfer needs a target genre (one of: {', '.join(self.genres)})")
        if genre not in self._generators:
            raise ValueError(f"no model transfers to genre {genre!r} (known: {', '.join(self.genres)})")
        if request.bars < 1:
            raise ValueError(f"bars must be >= 1, got {request.bars}")
        meter = request.phrase.meter
        per_roll = pianoroll.max_bars(meter)
        if per_roll < 1:
            raise ValueError(f"one bar of {meter} does not fit the model's {pianoroll.ROLL_STEPS}-step roll")
        bar_beats = meter.beats_per_bar
        chunks: list[tuple[float, int, list[Note]]] = []
        for first_bar in range(0, request.bars, per_roll):
            bars = min(per_roll, request.bars - first_bar)
            offset = first_bar * bar_beats
            notes = [
                n.shifted(-offset)
                for n in request.phrase.notes
                if offset - 1e-9 <= n.start < offset + bars * bar_beats - 1e-9
            ]
            if notes:
                chunks.append((offset, bars, notes))
        return genre, chunks

    def _run(self, generator: torch.nn.Module, batch: torch.Tensor) -> np.ndarray:
        """Binarised generator output; on CPU with `threads` intra-op threads (restored afterwards)."""
        with cpu_threads(self.device, self.threads), torch.no_grad():
            return (generator(batch) >= self.threshold).squeeze(1).cpu().numpy()


def create_transfer_model(
    device: str = "cpu", options: Mapping[str, Any] | None = None
) -> TransferPhraseModel:
    """Registry factory; options: "checkpoint" (a path, or several joined by ","; default: the
    shipped cyclegan_*.pt), "threshold" (default 0.5), "threads" (CPU intra-op threads while
    generating, default 1). A missing or unreadable checkpoint is a UserError."""
    from musebridge.errors import UserError
    from musebridge.registry import require_checkpoint

    options = dict(options or {})
    named = str(options.get("checkpoint", "") or "")
    paths = [Path(p.strip()).expanduser() for p in named.split(",") if p.strip()] or shipped_checkpoints()
    if not paths:
        raise UserError(f"model 'cyclegan': no checkpoint given and none shipped in {CHECKPOINT_DIR}")
    pairs = []
    for path in paths:
        require_checkpoint(path, model="cyclegan")
        try:
            model, genres, _extra = load_cyclegan(path, device)
        except ValueError as error:
            raise UserError(f"model 'cyclegan': {error}") from error
        pairs.append((model, genres))
    return TransferPhraseModel(
        pairs,
        device=device,
        threshold=float(options.get("threshold", 0.5)),
        threads=int(options.get("threads", 1)),
    )
