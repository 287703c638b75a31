"""C-RNN-GAN tones (Mogren 2016): a sequence of steps, each holding up to 3 tones (C-RNN-GAN-3).

A step is one onset time. Each tone slot has 4 features, in this order (FEATURES):

    length     ticks the tone lasts (384 ticks per quarter note)
    frequency  Hz, 440 * 2 ** ((pitch - 69) / 12)
    intensity  MIDI velocity 1..127; 0 means "no tone in this slot"
    time       ticks since the previous step's start (the first step: since the phrase start)

so an array has shape [steps, tones_per_step * 4] (float32). Simultaneous onsets share a step,
highest pitch first; past `tones_per_step` the lowest are dropped. Every slot of a step carries the
step's time; decoding reads it from the first slot. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from musebridge.core.music import Meter, Note, Phrase

TICKS_PER_QUARTER = 384
TONES_PER_STEP = 3
FEATURES = ("length", "frequency", "intensity", "time")
N_FEATURES = len(FEATURES)


def pitch_to_hz(pitch: float) -> float:
    """Equal-tempered frequency of a MIDI pitch (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


def hz_to_pitch(frequency: float) -> int:
    """Nearest MIDI pitch of a frequency, folded by octaves into 0..127; ValueError if not > 0."""
    if not frequency > 0:
        raise ValueError(f"frequency must be > 0 Hz, got {frequency}")
    pitch = int(round(69 + 12 * np.log2(frequency / 440.0)))
    while pitch < 0:
        pitch += 12
    while pitch > 127:
        pitch -= 12
    return pitch


def to_ticks(beats: float) -> int:
    return int(round(beats * TICKS_PER_QUARTER))


def encode_notes(
    notes: Iterable[Note], tones_per_step: int = TONES_PER_STEP, offset_beats: float = 0.0
) -> np.ndarray:
    """Tone array (float32 [steps, tones_per_step * 4]) of the notes, times from `offset_beats`."""
    if tones_per_step < 1:
        raise ValueError("tones_per_step must be >= 1")
    by_onset: dict[int, list[Note]] = {}
    for note in notes:
        by_onset.setdefault(to_ticks(note.start - offset_beats), []).append(note)
    array = np.zeros((len(by_onset), tones_per_step * N_FEATURES), dtype=np.float32)
    previous = 0
    for row, onset in enumerate(sorted(by_onset)):
        chosen = sorted(by_onset[onset], key=lambda n: (-n.pitch, -n.duration))[:tones_per_step]
        for slot in range(tones_per_step):
            base = slot * N_FEATURES
            array[row, base + 3] = onset - previous
            if slot < len(chosen):
                note = chosen[slot]
                array[row, base : base + 3] = (
                    max(1, to_ticks(note.duration)),
                    pitch_to_hz(note.pitch),
                    note.velocity,
                )
        previous = onset
    return array


def encode_phrase(phrase: Phrase, tones_per_step: int = TONES_PER_STEP) -> np.ndarray:
    """Tone array of a phrase (times from its downbeat)."""
    return encode_notes(phrase.notes, tones_per_step)


def decode_notes(
    array: np.ndarray, tones_per_step: int = TONES_PER_STEP, offset_beats: float = 0.0
) -> list[Note]:
    """Notes of a tone array. Generated arrays are tolerated: negative times count as 0, lengths
    under one tick as one tick, a slot with intensity < 0.5 or frequency <= 0 is silent, velocities
    are clipped to 127. ValueError for a wrong shape or NaN / infinity."""
    values = np.asarray(array)
    width = tones_per_step * N_FEATURES
    if values.ndim != 2 or values.shape[1] != width:
        raise ValueError(f"a tone array must have shape [steps, {width}], got {values.shape}")
    if values.dtype.kind not in "iuf":
        raise ValueError(f"a tone array must be numeric, got dtype {values.dtype}")
    if not np.all(np.isfinite(values)):
        raise ValueError("a tone array must not hold NaN or infinity")
    notes = []
    clock = 0.0
    for row in values.astype(np.float64):
        clock += max(0.0, round(row[3])) / TICKS_PER_QUARTER
        for slot in range(tones_per_step):
            length, frequency, intensity, _time = row[slot * N_FEATURES : (slot + 1) * N_FEATURES]
            if intensity < 0.5 or frequency <= 0:
                continue
            duration = max(1.0, round(length)) / TICKS_PER_QUARTER
            velocity = int(min(127, max(1, round(intensity))))
            notes.append(Note(hz_to_pitch(frequency), velocity, clock + offset_beats, duration))
    return notes


def decode_phrase(
    array: np.ndarray, meter: Meter | None = None, bars: int = 1, tones_per_step: int = TONES_PER_STEP
) -> Phrase:
    """The tones as a phrase of `bars` bars of `meter` (default 4/4); notes past its end are cut."""
    notes = decode_notes(array, tones_per_step)
    return Phrase(notes=tuple(notes), bars=bars, meter=meter or Meter()).clipped()
