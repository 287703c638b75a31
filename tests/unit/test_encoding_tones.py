"""Round trips of C-RNN-GAN tones (length, frequency, intensity, time) at 384 ticks per quarter."""

from __future__ import annotations

import numpy as np
import pytest

from musebridge.core.music import Meter, Note, Phrase
from musebridge.models.encoding import tones
from musebridge.models.encoding.tones import TICKS_PER_QUARTER


def note_key(note: Note) -> tuple:
    return (round(note.start * TICKS_PER_QUARTER), note.pitch, note.velocity, round(note.duration * 384))


def random_notes(rng: np.random.Generator, count: int, max_chord: int) -> list[Note]:
    """Notes on a tick grid, at most `max_chord` distinct pitches per onset."""
    notes = []
    tick = int(rng.integers(0, 200))
    while len(notes) < count:
        chord = rng.choice(128, size=int(rng.integers(1, max_chord + 1)), replace=False)
        for pitch in chord.tolist():
            duration = int(rng.integers(1, 4 * TICKS_PER_QUARTER))
            notes.append(Note(pitch, int(rng.integers(1, 128)), tick / TICKS_PER_QUARTER, duration / 384))
        tick += int(rng.integers(1, 2 * TICKS_PER_QUARTER))
    return notes


def test_every_midi_pitch_survives_the_frequency_feature():
    for pitch in range(128):
        assert tones.hz_to_pitch(tones.pitch_to_hz(pitch)) == pitch
    assert tones.pitch_to_hz(69) == pytest.approx(440.0)
    assert tones.hz_to_pitch(5.0) == tones.hz_to_pitch(10.0) == 3  # pitch -9 folded up an octave
    assert tones.hz_to_pitch(tones.pitch_to_hz(130)) == 118
    with pytest.raises(ValueError, match="> 0 Hz"):
        tones.hz_to_pitch(0.0)


@pytest.mark.parametrize("tones_per_step", [1, 2, 3])
def test_random_note_sets_round_trip_exactly(tones_per_step):
    rng = np.random.default_rng(tones_per_step)
    for _ in range(30):
        notes = random_notes(rng, 40, tones_per_step)
        array = tones.encode_notes(notes, tones_per_step)
        assert array.dtype == np.float32 and array.shape[1] == 4 * tones_per_step
        back = tones.decode_notes(array, tones_per_step)
        assert sorted(map(note_key, back)) == sorted(map(note_key, notes))


def test_layout_of_a_step_and_the_fourth_tone_dropped():
    chord = [Note(p, 10 + p, 1.0, 0.5) for p in (60, 64, 67, 72)]
    array = tones.encode_notes([Note(48, 90, 0.25, 1.0), *chord])
    assert array.shape == (2, 12)
    assert array[0].tolist()[:4] == [384.0, pytest.approx(tones.pitch_to_hz(48)), 90.0, 96.0]
    assert array[0, 6] == 0 and array[0, 7] == 96.0  # empty slots: no intensity, same time
    second = array[1].reshape(3, 4)
    assert second[:, 2].tolist() == [82.0, 77.0, 74.0]  # 72, 67, 64: the highest three
    assert second[:, 3].tolist() == [288.0] * 3  # 1.0 - 0.25 beats later
    pitches = sorted(n.pitch for n in tones.decode_notes(array))
    assert pitches == [48, 64, 67, 72]


def test_generated_arrays_are_tolerated_and_phrases_clipped():
    generated = np.array(
        [
            [-3.0, 261.6, 80.2, -20.0, 10.0, -5.0, 90.0, 0.0, 10.0, 300.0, 0.2, 0.0],
            [0.3, 523.3, 300.0, 384.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [96.0, 440.0, 64.0, 2000.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )
    notes = tones.decode_notes(generated)
    assert [(n.pitch, n.velocity, n.start, n.duration) for n in notes] == [
        (60, 80, 0.0, 1 / 384),
        (72, 127, 1.0, 1 / 384),
        (69, 64, 1.0 + 2000 / 384, 0.25),
    ]
    phrase = tones.decode_phrase(generated, Meter(3, 4), bars=2)
    assert [n.pitch for n in phrase.notes] == [60, 72]
    source = Phrase(notes=(Note(60, 70, 0.5, 1.0),), bars=1)
    assert tones.encode_phrase(source)[0, 3] == 192.0


@pytest.mark.parametrize(
    "garbage, message",
    [
        (np.zeros((4, 11)), "shape"),
        (np.zeros(12), "shape"),
        (np.full((2, 12), np.inf), "NaN or infinity"),
        (np.array([["a"] * 12]), "numeric"),
    ],
)
def test_decoding_garbage_raises_a_clear_value_error(garbage, message):
    with pytest.raises(ValueError, match=message):
        tones.decode_notes(garbage)
