"""Binary piano roll for CycleGAN genre transfer (Brunner et al. 2018): 64 steps x 84 pitches.

    roll[step, pitch - 24] is True while a note of that pitch sounds at that sixteenth-note step.

All tracks are merged, velocity is dropped (the decoder takes it back from a reference phrase), and
pitches outside MIDI 24..107 are folded in by octaves. The time grid is 4 steps per quarter note in
every meter, so 4 bars of 4/4 fill the 64 steps exactly; 4 bars of 3/4 fill 48 steps and 4 bars of
7/8 fill 56, the rest is padding (zeros, ignored when decoding). A phrase longer than 64 steps (e.g.
4 bars of 5/4) does not fit: `max_bars(meter)` says how many bars do.

Like any binary roll, two notes of one pitch that touch merge into one long note. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from musebridge.core.music import Meter, Note, Phrase

LOW_PITCH = 24
HIGH_PITCH = 107
N_PITCHES = HIGH_PITCH - LOW_PITCH + 1  # 84
STEPS_PER_QUARTER = 4
ROLL_BARS = 4
ROLL_STEPS = 64
DEFAULT_VELOCITY = 90


def phrase_steps(meter: Meter, bars: int) -> int:
    """Steps that `bars` bars of `meter` occupy at 4 steps per quarter note."""
    steps = bars * meter.beats_per_bar * STEPS_PER_QUARTER
    if abs(steps - round(steps)) > 1e-9:
        raise ValueError(f"{bars} bars of {meter} are not a whole number of sixteenth-note steps")
    return int(round(steps))


def max_bars(meter: Meter, n_steps: int = ROLL_STEPS) -> int:
    """How many whole bars of `meter` fit in the roll (at most ROLL_BARS)."""
    return max(0, min(ROLL_BARS, int(n_steps // (meter.beats_per_bar * STEPS_PER_QUARTER))))


def fold_into_roll(pitch: int) -> int:
    """A pitch moved by octaves into 24..107."""
    while pitch < LOW_PITCH:
        pitch += 12
    while pitch > HIGH_PITCH:
        pitch -= 12
    return pitch


def encode_notes(
    notes: Iterable[Note],
    meter: Meter,
    bars: int = ROLL_BARS,
    offset_beats: float = 0.0,
    n_steps: int = ROLL_STEPS,
) -> np.ndarray:
    """Roll (bool [n_steps, 84]) of the notes from `offset_beats` on, `bars` bars of `meter`, padded.

    Notes are quantised to the nearest sixteenth (at least one step) and cut at the phrase end.
    ValueError if the bars do not fit in n_steps.
    """
    used = phrase_steps(meter, bars)
    if bars < 1 or used > n_steps:
        raise ValueError(
            f"{bars} bars of {meter} need {used} steps; the roll holds {n_steps} (max {max_bars(meter)} bars)"
        )
    roll = np.zeros((n_steps, N_PITCHES), dtype=bool)
    for note in notes:
        start = int(round((note.start - offset_beats) * STEPS_PER_QUARTER))
        end = max(int(round((note.end - offset_beats) * STEPS_PER_QUARTER)), start + 1)
        start, end = max(start, 0), min(end, used)
        if start < end:
            roll[start:end, fold_into_roll(note.pitch) - LOW_PITCH] = True
    return roll


def encode_phrase(phrase: Phrase, n_steps: int = ROLL_STEPS) -> np.ndarray:
    """Roll of a whole phrase (bool [n_steps, 84])."""
    return encode_notes(phrase.notes, phrase.meter, phrase.bars, n_steps=n_steps)


def validate_roll(roll: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """A boolean [steps, 84] roll from a bool/int/float array (floats binarised at `threshold`)."""
    array = np.asarray(roll)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]  # [1, steps, 84] as a model emits for one phrase
    if array.ndim != 2 or array.shape[1] != N_PITCHES:
        raise ValueError(f"a piano roll must have shape [steps, {N_PITCHES}], got {array.shape}")
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "iuf":
        raise ValueError(f"a piano roll must be numeric or boolean, got dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError("a piano roll must not hold NaN or infinity")
    return array >= threshold


def _velocity_picker(reference: Phrase | Sequence[Note] | None, default: int):
    notes = list(reference.notes if isinstance(reference, Phrase) else (reference or ()))
    if not notes:
        return lambda _pitch, _start, _end: default

    def pick(pitch: int, start: float, end: float) -> int:
        overlapping = [n for n in notes if n.start < end - 1e-6 and n.end > start + 1e-6]
        if overlapping:
            def preference(n: Note) -> tuple[bool, float, int]:
                return (n.pitch == pitch, min(n.end, end) - max(n.start, start), -abs(n.pitch - pitch))

            return max(overlapping, key=preference).velocity
        return min(notes, key=lambda n: (abs(n.start - start), abs(n.pitch - pitch))).velocity

    return pick


def decode_roll(
    roll: np.ndarray,
    meter: Meter | None = None,
    bars: int | None = None,
    reference: Phrase | Sequence[Note] | None = None,
    default_velocity: int = DEFAULT_VELOCITY,
    threshold: float = 0.5,
) -> Phrase:
    """The phrase a roll spells: each run of active steps in a pitch column is one note.

    `bars` defaults to as many bars of `meter` (default 4/4) as fit, at most 4; steps past them are
    padding and ignored. Velocities come from `reference` (e.g. the phrase that was transferred):
    the overlapping reference note of the same pitch, else the one overlapping longest, else the
    nearest onset; `default_velocity` only when there is no reference. ValueError for a bad array.
    """
    meter = meter or Meter()
    active = validate_roll(roll, threshold)
    bars = bars if bars is not None else max_bars(meter, active.shape[0])
    used = phrase_steps(meter, bars) if bars >= 1 else 0
    if bars < 1 or used > active.shape[0]:
        raise ValueError(f"{bars} bars of {meter} do not fit in a roll of {active.shape[0]} steps")
    active = active[:used]
    velocity_at = _velocity_picker(reference, default_velocity)
    padded = np.zeros((used + 2, N_PITCHES), dtype=np.int8)
    padded[1:-1] = active
    edges = np.diff(padded, axis=0)  # +1 where a run starts, -1 one past where it ends
    notes = []
    for column in range(N_PITCHES):
        starts = np.flatnonzero(edges[:, column] == 1)
        ends = np.flatnonzero(edges[:, column] == -1)
        pitch = column + LOW_PITCH
        for start_step, end_step in zip(starts.tolist(), ends.tolist(), strict=True):
            start, end = start_step / STEPS_PER_QUARTER, end_step / STEPS_PER_QUARTER
            notes.append(Note(pitch, velocity_at(pitch, start, end), start, end - start))
    return Phrase(notes=tuple(notes), bars=bars, meter=meter)
