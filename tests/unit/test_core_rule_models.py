"""Rule models: thru, transpose and blend are deterministic PhraseModels."""

from __future__ import annotations

import pytest

from musebridge.core.model_protocol import ModelRequest, PhraseModel
from musebridge.core.music import Meter, Note, Phrase
from musebridge.core.rule_models import BlendModel, TransposeModel, build_rule_model, fit_to_bars

CALL = Phrase((Note(60, 100, 0.0, 1.0), Note(64, 80, 2.0, 3.0)), bars=1)


def test_models_follow_the_protocol() -> None:
    for name in ("thru", "transpose", "blend"):
        model = build_rule_model(name)
        assert isinstance(model, PhraseModel) and model.name == name
    with pytest.raises(ValueError, match="unknown rule model"):
        build_rule_model("musicvae")
    with pytest.raises(ValueError, match="no option"):
        build_rule_model("thru", {"semitones": 3})


def test_transpose_moves_pitches_keeps_velocities_and_fits_bars() -> None:
    model = build_rule_model("transpose", {"semitones": -3})
    answer = model.generate(ModelRequest("transfer", CALL, bars=2))
    assert answer.bars == 2
    # tiled to two bars; the note ringing past the first bar line is cut there
    assert answer.notes == (
        Note(57, 100, 0.0, 1.0),
        Note(61, 80, 2.0, 2.0),
        Note(57, 100, 4.0, 1.0),
        Note(61, 80, 6.0, 2.0),
    )
    assert TransposeModel().generate(ModelRequest("continue", CALL, bars=1)).notes[0].pitch == 72
    with pytest.raises(ValueError):
        TransposeModel(semitones=1.5)  # type: ignore[arg-type]


def test_thru_returns_the_input() -> None:
    answer = build_rule_model("thru").generate(ModelRequest("transfer", CALL, bars=1))
    assert answer.notes == (Note(60, 100, 0.0, 1.0), Note(64, 80, 2.0, 2.0))
    assert fit_to_bars(Phrase((), bars=1), 3) == Phrase((), bars=3)


def test_blend_takes_bars_from_b_below_the_position() -> None:
    a = Phrase(tuple(Note(60, 100, float(b * 3), 1.0) for b in range(4)), bars=4, meter=Meter(3, 4))
    b = Phrase(tuple(Note(72, 100, float(b * 3) + 1, 1.0) for b in range(4)), bars=4, meter=Meter(3, 4))
    phrase = Phrase((), bars=4, meter=Meter(3, 4))
    for position, expected in [(0.0, "AAAA"), (0.3, "BAAA"), (0.5, "BBAA"), (0.9, "BBBB"), (1.0, "BBBB")]:
        out = BlendModel().generate(
            ModelRequest("interpolate", phrase, 4, position=position, clip_a=a, clip_b=b)
        )
        got = "".join("B" if n.pitch == 72 else "A" for n in out.notes)
        assert got == expected, position
        assert [n.start % 3 for n in out.notes] == [1.0 if c == "B" else 0.0 for c in expected]
