"""Round trips of the 64 x 84 binary piano roll, every pitch and every meter that fits."""

from __future__ import annotations

import numpy as np
import pytest

from musebridge.core.music import Meter, Note, Phrase
from musebridge.models.encoding import pianoroll
from musebridge.models.encoding.pianoroll import LOW_PITCH, N_PITCHES, ROLL_STEPS

FITTING_METERS = [
    Meter(n, d)
    for d in (2, 4, 8, 16)
    for n in range(1, 17)
    if pianoroll.max_bars(Meter(n, d)) >= 1 and (n * 16) % d == 0
]


def random_roll(rng: np.random.Generator, used: int) -> np.ndarray:
    roll = np.zeros((ROLL_STEPS, N_PITCHES), dtype=bool)
    roll[:used] = rng.random((used, N_PITCHES)) < 0.05
    return roll


def test_every_pitch_at_every_step_round_trips():
    for column in range(N_PITCHES):
        pitch = column + LOW_PITCH
        for step in range(0, ROLL_STEPS, 3):
            note = Note(pitch, 64, step / 4, 0.25 * (1 + column % 5))
            roll = pianoroll.encode_notes([note], Meter(4, 4))
            assert roll.sum() == min(1 + column % 5, ROLL_STEPS - step)
            assert roll[step, column]
            back = pianoroll.decode_roll(roll, reference=[note])
            assert [(n.pitch, n.start, n.velocity) for n in back.notes] == [(pitch, note.start, 64)]
            assert np.array_equal(pianoroll.encode_phrase(back), roll)


@pytest.mark.parametrize("meter", FITTING_METERS, ids=str)
def test_random_rolls_round_trip_in_every_meter_that_fits(meter):
    rng = np.random.default_rng(11)
    bars = pianoroll.max_bars(meter)
    used = pianoroll.phrase_steps(meter, bars)
    for _ in range(5):
        roll = random_roll(rng, used)
        phrase = pianoroll.decode_roll(roll, meter)
        assert phrase.bars == bars and phrase.meter == meter
        assert np.array_equal(pianoroll.encode_phrase(phrase), roll)


def test_a_three_four_phrase_fills_48_steps_and_pads():
    assert pianoroll.max_bars(Meter(3, 4)) == 4
    phrase = Phrase(notes=(Note(60, 80, 0.0, 12.0),), bars=4, meter=Meter(3, 4))
    roll = pianoroll.encode_phrase(phrase)
    assert roll[:48, 60 - LOW_PITCH].all() and not roll[48:].any()
    noisy = roll.copy()
    noisy[50:, :] = True  # the padding is ignored when decoding
    back = pianoroll.decode_roll(noisy, Meter(3, 4))
    assert [(n.pitch, n.start, n.duration) for n in back.notes] == [(60, 0.0, 12.0)]
    assert pianoroll.max_bars(Meter(5, 4)) == 3
    with pytest.raises(ValueError, match="max 3 bars"):
        pianoroll.encode_notes([], Meter(5, 4), bars=4)


def test_tracks_merge_pitches_fold_and_velocities_come_from_the_reference():
    reference = Phrase(
        notes=(
            Note(60, 20, 0.0, 1.0),
            Note(64, 100, 0.0, 2.0),
            Note(67, 50, 3.0, 1.0),
            Note(10, 70, 2.0, 1.0),
        ),
        bars=1,
    )
    roll = pianoroll.encode_phrase(reference)
    assert roll[8:12, 34 - LOW_PITCH].all()  # pitch 10 folded up two octaves
    back = pianoroll.decode_roll(roll, reference=reference)
    assert {(n.pitch, n.velocity) for n in back.notes} == {(60, 20), (64, 100), (67, 50), (34, 70)}
    moved = np.roll(roll, 1, axis=1)  # transferred output: every pitch a semitone up
    velocities = {n.pitch: n.velocity for n in pianoroll.decode_roll(moved, reference=reference).notes}
    assert velocities == {61: 20, 65: 100, 68: 50, 35: 70}  # same overlap: the nearest pitch
    assert {n.velocity for n in pianoroll.decode_roll(roll, default_velocity=33).notes} == {33}


def test_float_model_output_is_binarised_at_the_threshold():
    output = np.zeros((1, ROLL_STEPS, N_PITCHES), dtype=np.float32)
    output[0, 0:4, 36] = 0.9
    output[0, 4:8, 36] = 0.4
    phrase = pianoroll.decode_roll(output)
    assert [(n.pitch, n.start, n.duration) for n in phrase.notes] == [(60, 0.0, 1.0)]
    assert len(pianoroll.decode_roll(output, threshold=0.3).notes[0:1]) == 1


@pytest.mark.parametrize(
    "garbage, message",
    [
        (np.zeros((64, 88)), "shape"),
        (np.zeros(64), "shape"),
        (np.full((64, 84), np.nan), "NaN"),
        (np.array([["x"] * 84] * 64), "numeric"),
    ],
)
def test_decoding_garbage_raises_a_clear_value_error(garbage, message):
    with pytest.raises(ValueError, match=message):
        pianoroll.decode_roll(garbage)


def test_decoding_bars_that_do_not_fit_raises():
    with pytest.raises(ValueError, match="do not fit"):
        pianoroll.decode_roll(np.zeros((64, 84), dtype=bool), Meter(4, 4), bars=5)
