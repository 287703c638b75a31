"""The universal translator as a PhraseModel: mode "transfer", any input genre to request.genre.

Phrase handling is the CycleGAN adapter's (cyclegan/phrase_model.py: cut into rolls of up to 4 bars,
silent chunks stay silent, velocities from the input notes it overlaps); only the roll-to-roll step
differs: the shared encoder, then the target genre's decoder with cached generation (greedy,
p >= the model's threshold). The genres it offers are the decoders in its checkpoint; a genre added
with `musebridge train umt --add-genre` becomes selectable by /musebridge/genre (and appears in the
device's menu) once the preset lists it in `genres`, the list the daemon accepts and reports.

Registry: `register_lazy("umt", "musebridge.models.umt.phrase_model:create_umt_model")`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from musebridge.models import CHECKPOINT_DIR
from musebridge.models.cyclegan.phrase_model import TransferPhraseModel
from musebridge.models.umt.model import UniversalTranslator, load_umt

SHIPPED = CHECKPOINT_DIR / "umt.pt"


def _translator(
    model: UniversalTranslator, genre: str, guidance: float = 0.0
) -> Callable[[torch.Tensor], torch.Tensor]:
    """rolls (C, 1, 64, 84) -> 0/1 rolls (C, 1, 64, 84) in `genre`: a generator as the adapter calls it."""

    def run(batch: torch.Tensor) -> torch.Tensor:
        return model.translate(batch.squeeze(1), genre, guidance=guidance).float().unsqueeze(1)

    return run


class UMTPhraseModel(TransferPhraseModel):
    """Transfer from any genre into any genre the model has a decoder for; satisfies PhraseModel."""

    name = "umt"

    def __init__(
        self,
        model: UniversalTranslator,
        device: str | torch.device = "cpu",
        threads: int = 1,
        guidance: float = 0.0,
    ):
        self.device = torch.device(device)
        self.threshold = 0.5
        self.threads = threads
        self.guidance = guidance
        self.model = model.to(self.device).eval()
        self._generators = {genre: _translator(self.model, genre, guidance) for genre in model.genres}


def create_umt_model(device: str = "cpu", options: Mapping[str, Any] | None = None) -> UMTPhraseModel:
    """Registry factory; options: "checkpoint" (default: the shipped umt.pt), "threads" (CPU intra-op
    threads while generating, default 1), "guidance" (input guidance in logits, 0..20, default 0: see
    UniversalTranslator.translate). A missing or unreadable checkpoint, or a guidance that is not a
    number in 0..20, is a UserError."""
    from musebridge.errors import UserError
    from musebridge.models.umt.model import MAX_GUIDANCE, check_guidance
    from musebridge.registry import require_checkpoint

    options = dict(options or {})
    try:
        guidance = float(options.get("guidance", 0.0) or 0.0)
        check_guidance(guidance)
    except (TypeError, ValueError):  # not a number, or out of range (NaN too)
        raise UserError(
            f"model 'umt': guidance must be 0..{MAX_GUIDANCE:g}, got {options.get('guidance')!r}"
        ) from None
    path = Path(str(options.get("checkpoint", "") or SHIPPED)).expanduser()
    require_checkpoint(path, model="umt")
    try:
        model, _extra = load_umt(path, device)
    except ValueError as error:
        raise UserError(f"model 'umt': {error}") from error
    return UMTPhraseModel(model, device=device, threads=int(options.get("threads", 1)), guidance=guidance)
