"""Round trips and edge cases of the 90-class melody tokens."""

from __future__ import annotations

import numpy as np
import pytest

from musebridge.core.music import Meter, Note, Phrase
from musebridge.models.encoding import melody
from musebridge.models.encoding.melody import HOLD, NOTE_OFF, NUM_CLASSES

METERS = [Meter(n, d) for d in (2, 4, 8, 16) for n in range(1, 13) if (n * 16 // d) * d == n * 16]


def canonical_tokens(rng: np.random.Generator, n_steps: int) -> np.ndarray:
    """A random token sequence as the encoder writes them: NOTE_OFF only while a note sounds."""
    tokens = np.zeros(n_steps, dtype=np.int64)
    sounding = False
    for step in range(n_steps):
        roll = rng.random()
        if roll < 0.3:
            tokens[step] = rng.integers(2, NUM_CLASSES)
            sounding = True
        elif roll < 0.4 and sounding:
            tokens[step] = NOTE_OFF
            sounding = False
    return tokens


def test_steps_per_bar_follows_the_meter():
    assert melody.steps_per_bar(Meter(4, 4)) == 16
    assert melody.steps_per_bar(Meter(3, 4)) == 12
    assert melody.steps_per_bar(Meter(6, 8)) == 12
    assert melody.steps_per_bar(Meter(7, 8)) == 14
    assert melody.steps_per_bar(Meter(4, 2)) == 32
    assert melody.steps_per_bar(Meter(5, 16)) == 5
    with pytest.raises(ValueError, match="sixteenth"):
        melody.steps_per_bar(Meter(1, 32))


@pytest.mark.parametrize("token", range(2, NUM_CLASSES))
def test_every_note_class_round_trips_against_every_neighbour(token):
    pitch = melody.token_to_pitch(token)
    assert melody.pitch_to_token(pitch) == token
    for other in range(NUM_CLASSES):
        tokens = np.array([token, HOLD, other, HOLD] + [HOLD] * 12)
        phrase = melody.decode_tokens(tokens)
        assert phrase.notes[0].pitch == pitch
        assert np.array_equal(melody.encode_phrase(phrase), tokens)


def test_note_off_while_silent_is_a_no_op_and_not_reencoded():
    tokens = np.array([NOTE_OFF, HOLD, 60 - 19, NOTE_OFF, NOTE_OFF] + [HOLD] * 11)
    phrase = melody.decode_tokens(tokens)
    assert [(n.pitch, n.start, n.duration) for n in phrase.notes] == [(60, 0.5, 0.25)]
    expected = np.array([HOLD, HOLD, 60 - 19, NOTE_OFF, HOLD] + [HOLD] * 11)
    assert np.array_equal(melody.encode_phrase(phrase), expected)


@pytest.mark.parametrize("meter", METERS, ids=str)
def test_random_canonical_sequences_round_trip_in_every_meter(meter):
    rng = np.random.default_rng(7)
    for bars in (1, 2, 4):
        for _ in range(20):
            tokens = canonical_tokens(rng, bars * melody.steps_per_bar(meter))
            phrase = melody.decode_tokens(tokens, meter)
            assert phrase.bars == bars and phrase.meter == meter
            assert np.array_equal(melody.encode_phrase(phrase), tokens)


def test_encode_reduces_polyphony_to_the_top_voice():
    notes = [
        Note(72, 100, 0.0, 2.0),  # soprano held two beats
        Note(60, 80, 0.0, 1.0),  # lower voice, same onset: dropped
        Note(64, 80, 1.0, 1.0),  # lower note under the held soprano: dropped
        Note(74, 90, 1.5, 0.5),  # higher onset cuts the soprano
        Note(55, 70, 3.0, 1.0),  # after silence: the only voice
    ]
    tokens = melody.encode_notes(notes, Meter(4, 4), 1)
    expected = [72 - 19, 0, 0, 0, 0, 0, 74 - 19, 0, NOTE_OFF, 0, 0, 0, 55 - 19, 0, 0, 0]
    assert tokens.tolist() == expected


def test_out_of_range_pitches_fold_by_octaves_and_quantise():
    notes = [Note(12, 100, 0.0, 1.0), Note(120, 100, 1.02, 0.98)]
    tokens = melody.encode_notes(notes, Meter(2, 4), 1)
    assert tokens.tolist() == [24 - 19, 0, 0, 0, 108 - 19, 0, 0, 0]
    assert melody.fold_pitch(0) == 24 and melody.fold_pitch(127) == 103


def test_encode_with_offset_cuts_notes_outside_the_window():
    notes = [Note(60, 100, 3.0, 2.0), Note(62, 100, 4.5, 4.0)]
    tokens = melody.encode_notes(notes, Meter(4, 4), 1, offset_beats=4.0)
    assert tokens.tolist() == [0, 0, 62 - 19] + [0] * 13


def test_decode_takes_velocities_from_the_source_not_a_constant():
    source = Phrase(notes=(Note(60, 30, 0.0, 1.0), Note(67, 110, 0.0, 2.0), Note(62, 55, 3.0, 1.0)))
    tokens = np.array([65 - 19, 0, 0, 0, 0, 0, 0, 0, 64 - 19, 0, 0, 0, 66 - 19, 0, 0, 0])
    phrase = melody.decode_tokens(tokens, velocity_source=source)
    assert [n.velocity for n in phrase.notes] == [110, 55, 55]  # beat 2: silent, nearest onset beat 3
    assert {n.velocity for n in melody.decode_tokens(tokens, default_velocity=70).notes} == {70}


@pytest.mark.parametrize(
    "garbage, message",
    [
        (np.zeros((2, 16), dtype=np.int64), "1-D"),
        (np.array([], dtype=np.int64), "empty"),
        (np.full(16, 90), "0..89"),
        (np.full(16, -1), "0..89"),
        (np.full(16, 0.5), "whole numbers"),
        (np.full(16, np.nan), "whole numbers"),
        (np.zeros(15, dtype=np.int64), "whole bars"),
        (np.array(["a"] * 16), "integers"),
    ],
)
def test_decoding_garbage_raises_a_clear_value_error(garbage, message):
    with pytest.raises(ValueError, match=message):
        melody.decode_tokens(garbage)


def test_transposition_augmentation_keeps_range_and_rhythm():
    rng = np.random.default_rng(3)
    batch = np.stack([canonical_tokens(rng, 32) for _ in range(64)])
    batch[0, 0] = 2  # lowest pitch: only upward shifts allowed
    batch[1, 0] = 89  # highest pitch: only downward shifts allowed
    shifted = melody.augment_transpose(batch, rng)
    assert np.array_equal(shifted < 2, batch < 2)
    moved = (shifted - batch)[batch >= 2]
    assert moved.min() >= -5 and moved.max() <= 5
    assert shifted.min() >= 0 and shifted.max() < NUM_CLASSES
    shifts = {int((s - b)[b >= 2][0]) for s, b in zip(shifted, batch, strict=True) if (b >= 2).any()}
    assert len(shifts) > 3  # really random, not always zero
    assert melody.allowed_transpositions(np.array([2, 0, 89])) == [0]
    assert melody.allowed_transpositions(np.array([0, 1, 0])) == [0]
    with pytest.raises(ValueError, match="range"):
        melody.transpose_tokens(np.array([88, 0]), 2)


def test_array_fast_path_matches_the_note_path():
    rng = np.random.default_rng(5)
    for _ in range(200):
        count = int(rng.integers(0, 12))
        starts = rng.integers(-8, 40, count) / rng.choice([4, 6, 8])
        durations = rng.integers(1, 12, count) / rng.choice([3, 4, 8])
        pitches = rng.integers(0, 128, count)
        rows = zip(pitches, starts, durations, strict=True)
        notes = [Note(int(p), 80, float(s), float(d)) for p, s, d in rows]
        expected = melody.encode_notes(notes, Meter(3, 4), 2, offset_beats=1.0)
        rows = melody.quantize_arrays(starts, durations, pitches, offset_beats=1.0)
        assert np.array_equal(melody.encode_steps(rows, 24), expected)
