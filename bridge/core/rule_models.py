"""Deterministic rule models: they prove the realtime pipeline before the neural models land.

They implement the PhraseModel protocol (bridge/core/model_protocol.py) with plain note arithmetic:

- `thru`: the input phrase, unchanged (fitted to the requested number of bars).
- `transpose`: the input phrase moved by `semitones` (default +12), velocities kept.
- `blend`: interpolate: bar i of the answer comes from clip B if (i + 0.5) / bars < position,
  else from clip A.

Fitting to `request.bars`: a phrase shorter than the answer is repeated (tiled) to fill it, a longer
one is cut; a note ringing past the answer's end is cut there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from musebridge.core.model_protocol import MODES, ModelRequest
from musebridge.core.music import Note, Phrase

RULE_MODEL_NAMES = ("thru", "transpose", "blend")


def fit_to_bars(phrase: Phrase, bars: int) -> Phrase:
    """`phrase` tiled or cut to `bars` bars of its own meter (empty stays empty)."""
    source = phrase.clipped()
    source_len = source.length_beats
    target = Phrase((), bars=bars, meter=phrase.meter)
    target_len = target.length_beats
    notes: list[Note] = []
    offset = 0.0
    while offset < target_len and source.notes:
        notes.extend(n.shifted(offset) for n in source.notes)
        offset += source_len
    return replace(target, notes=tuple(notes)).clipped()


def _bar_notes(clip: Phrase, bar: int) -> list[Note]:
    """Notes starting in `bar` of `clip` (wrapping round the clip), starts relative to that bar."""
    bar_len = clip.meter.beats_per_bar
    source_bar = bar % clip.bars
    lo, hi = source_bar * bar_len, (source_bar + 1) * bar_len
    return [n.shifted(-lo) for n in clip.clipped().notes if lo <= n.start < hi]


class ThruModel:
    """Rule model `thru`: answers with the input phrase (a pipeline and latency reference)."""

    name = "thru"
    modes = frozenset(MODES)

    def generate(self, request: ModelRequest) -> Phrase:
        return fit_to_bars(request.phrase, request.bars)


class TransposeModel:
    """Rule model `transpose`: the input phrase moved by `semitones` (default +12), velocities kept.

    Serves transfer, continue and sample; a stand-in until the neural models exist.
    """

    name = "transpose"
    modes = frozenset({"transfer", "continue", "sample", "thru"})

    def __init__(self, semitones: int = 12) -> None:
        if not isinstance(semitones, int) or isinstance(semitones, bool) or not -127 <= semitones <= 127:
            raise ValueError(f"transpose semitones must be an integer -127..127, got {semitones!r}")
        self.semitones = semitones

    def generate(self, request: ModelRequest) -> Phrase:
        return fit_to_bars(request.phrase, request.bars).transposed(self.semitones)


class BlendModel:
    """Rule model `blend` (interpolate): bar i from clip B if (i + 0.5) / bars < position, else clip A.

    A stand-in for MusicVAE until it lands; a missing clip counts as an empty one.
    """

    name = "blend"
    modes = frozenset({"interpolate"})

    def generate(self, request: ModelRequest) -> Phrase:
        meter = request.phrase.meter
        bars = request.bars
        bar_len = meter.beats_per_bar
        notes: list[Note] = []
        for i in range(bars):
            clip = request.clip_b if (i + 0.5) / bars < request.position else request.clip_a
            if clip is None:
                continue
            notes.extend(n.shifted(i * bar_len) for n in _bar_notes(clip, i))
        return Phrase(tuple(notes), bars=bars, meter=meter).clipped()


def build_rule_model(name: str, options: Mapping[str, object] | None = None):
    """A rule model by name with its options (transpose: `semitones`); ValueError for unknown names."""
    options = dict(options or {})
    if name == "thru":
        model = ThruModel()
    elif name == "transpose":
        model = TransposeModel(**{k: v for k, v in options.items() if k == "semitones"})  # type: ignore[arg-type]
    elif name == "blend":
        model = BlendModel()
    else:
        raise ValueError(f"unknown rule model {name!r}; known: {', '.join(RULE_MODEL_NAMES)}")
    unknown = set(options) - ({"semitones"} if name == "transpose" else set())
    if unknown:
        raise ValueError(f"rule model {name!r} has no option(s) {', '.join(sorted(unknown))}")
    return model
