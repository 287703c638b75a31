"""The one protocol the bridge sees of any model: a phrase (and options) in, a phrase out.

Models never see clocks, ports or threads; the engine calls `generate` off the realtime path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from musebridge.core.music import Phrase

MODES = ("thru", "transfer", "continue", "interpolate", "sample")


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """What a job asks of a model.

    mode:        which task (transfer | continue | interpolate | sample).
    phrase:      the played input: the phrase to transfer, or the call to answer.
    bars:        how many bars the answer must have (its meter is phrase.meter).
    genre:       target genre for transfer (and optional conditioning elsewhere).
    temperature: sampling temperature; 1.0 is the model's own distribution.
    position:    interpolation point between clip_a (0.0) and clip_b (1.0).
    clip_a/b:    captured clips for interpolate.
    seed:        makes sampling deterministic.
    """

    mode: str
    phrase: Phrase
    bars: int
    genre: str = ""
    temperature: float = 1.0
    position: float = 0.0
    clip_a: Phrase | None = None
    clip_b: Phrase | None = None
    seed: int = 0


@runtime_checkable
class PhraseModel(Protocol):
    """A model the engine can run. `modes` lists the request modes it serves.

    A model may also have `generate_batch(requests: list[ModelRequest]) -> list[Phrase]`, the
    answers in order, computed together (one forward pass); the engine uses it for jobs that wait
    together (generate_many). It must give what `generate` gives each request alone."""

    name: str
    modes: frozenset[str]

    def generate(self, request: ModelRequest) -> Phrase:
        """Return the answer phrase: `request.bars` bars long, starts relative to its downbeat."""
        ...


def generate_many(model: PhraseModel, requests: Sequence[ModelRequest]) -> list[Phrase]:
    """The answers to `requests`, in order: through the model's optional batch entry point
    `generate_batch(requests) -> list[Phrase]` (one forward pass for many tracks' jobs due at the
    same bar line), else one `generate` each. Raises what the model raises."""
    batch = getattr(model, "generate_batch", None)
    if callable(batch):
        return list(batch(list(requests)))
    return [model.generate(request) for request in requests]
