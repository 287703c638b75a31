"""C-RNN-GAN statistics (as olofmogren/c-rnn-gan midi_statistics.py computes them) and continuation fit."""

from __future__ import annotations

import pytest

from musebridge.core.music import Note, Phrase
from musebridge.models.continuation.eval import (
    continuation_fit,
    estimate_scale,
    mean_gap,
    mean_statistics,
    phrase_statistics,
    polyphony_score,
    relative_gaps,
    repetitions,
    scale_consistency,
)


def _phrase(pitches_starts: list[tuple[int, float]], bars: int = 2) -> Phrase:
    return Phrase(notes=tuple(Note(p, 80, s, 0.5) for p, s in pitches_starts), bars=bars)


def test_polyphony_follows_the_reference_walk() -> None:
    assert polyphony_score([0, 1, 2]) == 0.0
    # t=0: mono 1; t=0 again: poly 1; t=1: the closed chord counts poly again, the new onset mono
    assert polyphony_score([0, 0, 1]) == pytest.approx(2 / 4)
    # the walk starts with "previous onset = 0": a first onset elsewhere is not counted at the switch
    assert polyphony_score([1, 1]) == pytest.approx(1 / 2)
    assert polyphony_score([]) == 0.0


def test_scale_consistency_keeps_the_reference_quirk() -> None:
    assert scale_consistency([60, 62, 64, 65, 67, 69, 71]) == ("C major", 1.0)
    # C, C#, D#: C# major holds all three, but the reference never wraps (pitch % 12 - root) mod 12
    name, score = scale_consistency([60, 61, 63])
    assert (name, score) == ("C natural_minor", pytest.approx(2 / 3))
    assert estimate_scale([60, 61, 63]) == (1, "major", 1.0)


def test_repetitions_count_pairs_like_the_reference() -> None:
    assert repetitions([60, 62, 60, 62, 60, 62]) == {2: 2}
    assert repetitions([1, 2, 3, 4, 1, 2, 3, 4, 9]) == {2: 3, 3: 2}
    assert repetitions([1, 2, 3]) == {}


def test_phrase_statistics_and_means() -> None:
    phrase = _phrase([(60, 0), (64, 0), (67, 1), (72, 2)])
    stats = phrase_statistics(phrase)
    assert stats["tone_span"] == 12.0
    assert stats["polyphony"] == pytest.approx(polyphony_score([0, 0, 1, 2]))
    assert stats["num_tones"] == 4.0
    assert phrase_statistics(Phrase(bars=1)) is None
    mean = mean_statistics([phrase, Phrase(bars=1), _phrase([(60, 0), (62, 1)])])
    assert mean["phrases"] == 2.0 and mean["empty"] == 1.0
    assert mean["tone_span"] == pytest.approx((12 + 2) / 2)


def test_relative_gaps_and_the_ten_percent_goal() -> None:
    gaps = relative_gaps({"tone_span": 11.0, "polyphony": 0.0}, {"tone_span": 10.0, "polyphony": 0.0})
    span = gaps["tone_span"]
    assert span == {"gap": pytest.approx(0.1), "within_10pct": True, "signed_gap": pytest.approx(0.1)}
    # monophonic real answers: polyphony has no relative gap and counts for no goal
    assert gaps["polyphony"] == {"gap": 0.0, "within_10pct": None, "defined": False}
    assert relative_gaps({"polyphony": 0.2}, {"polyphony": 0.0})["polyphony"]["gap"] == pytest.approx(0.2)
    assert relative_gaps({"polyphony": 0.0}, {"polyphony": 0.0006})["polyphony"]["defined"] is False
    chords = relative_gaps({"polyphony": 0.1}, {"polyphony": 0.2})["polyphony"]
    assert chords["within_10pct"] is False and chords["signed_gap"] == pytest.approx(-0.5)
    assert mean_gap(gaps) == pytest.approx(0.1)
    assert relative_gaps({"tone_span": 12.0}, {"tone_span": 10.0})["tone_span"]["within_10pct"] is False


def test_continuation_fit_measures_key_and_range() -> None:
    call = _phrase([(60, 0), (62, 0.5), (64, 1), (65, 1.5), (67, 2), (69, 2.5), (71, 3)])  # C major, 60..71
    inside = _phrase([(60, 0), (64, 1), (67, 2), (72, 3)])
    fit = continuation_fit(call, inside)
    assert fit["in_scale"] == 1.0
    assert fit["in_range"] == 1.0  # 72 is within the 2-semitone margin
    outside = _phrase([(61, 0), (66, 1), (90, 2), (64, 3)])
    fit = continuation_fit(call, outside)
    assert fit["in_scale"] == pytest.approx(1 / 4)
    assert fit["in_range"] == pytest.approx(3 / 4)
    assert continuation_fit(call, Phrase(bars=1)) is None
