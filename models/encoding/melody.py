"""MusicVAE melody tokens: 90 classes per step, 4 steps per quarter note, polyphony reduced to the top voice.

Token classes (Roberts et al. 2018, magenta's melody one-hot):
    0        HOLD      no event: the previous state (a sounding note, or a rest) goes on
    1        NOTE_OFF  the sounding note stops; a rest begins
    2..89    note-on   MIDI pitch 21..108 (token = pitch - 19)

Steps per bar come from the meter at 4 steps per quarter note: 4/4 -> 16, 3/4 -> 12, 6/8 -> 12,
7/8 -> 14, 4/2 -> 32. Meters whose bar is not a whole number of sixteenth notes (e.g. 1/32) raise
ValueError. Pure numpy: no torch here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from musebridge.core.music import Meter, Note, Phrase

NUM_CLASSES = 90
HOLD = 0
NOTE_OFF = 1
FIRST_NOTE_TOKEN = 2
MIN_PITCH = 21
MAX_PITCH = 108
STEPS_PER_QUARTER = 4
DEFAULT_VELOCITY = 90
MAX_TRANSPOSITION = 5


def steps_per_bar(meter: Meter) -> int:
    """Steps in one bar of `meter` at 4 steps per quarter note (16 for 4/4, 14 for 7/8)."""
    steps = meter.beats_per_bar * STEPS_PER_QUARTER
    if abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
        raise ValueError(f"meter {meter} is not a whole number of sixteenth-note steps")
    return int(round(steps))


def pitch_to_token(pitch: int) -> int:
    """Note-on token of a MIDI pitch in 21..108."""
    if not MIN_PITCH <= pitch <= MAX_PITCH:
        raise ValueError(f"pitch {pitch} is outside the melody range {MIN_PITCH}..{MAX_PITCH}")
    return pitch - MIN_PITCH + FIRST_NOTE_TOKEN


def token_to_pitch(token: int) -> int:
    """MIDI pitch of a note-on token (2..89)."""
    if not FIRST_NOTE_TOKEN <= token < NUM_CLASSES:
        raise ValueError(f"token {token} is not a note-on token ({FIRST_NOTE_TOKEN}..{NUM_CLASSES - 1})")
    return token - FIRST_NOTE_TOKEN + MIN_PITCH


def fold_pitch(pitch: int, low: int = MIN_PITCH, high: int = MAX_PITCH) -> int:
    """Move a pitch by whole octaves into low..high (the range must span at least an octave)."""
    if high - low < 11:
        raise ValueError("the folding range must span at least one octave")
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    return pitch


def _quantized(notes: Iterable[Note], offset_beats: float) -> list[tuple[int, int, int, int]]:
    """(start_step, end_step, pitch, velocity) per note, each at least one step long."""
    out = []
    for note in notes:
        start = int(round((note.start - offset_beats) * STEPS_PER_QUARTER))
        end = int(round((note.end - offset_beats) * STEPS_PER_QUARTER))
        out.append((start, max(end, start + 1), note.pitch, note.velocity))
    return out


def quantize_arrays(
    starts: np.ndarray, durations: np.ndarray, pitches: np.ndarray, offset_beats: float = 0.0
) -> list[tuple[int, int, int, int]]:
    """The same rows as for Note objects, from note arrays (fast path for dataset windows)."""
    start_steps = np.rint((np.asarray(starts, dtype=np.float64) - offset_beats) * STEPS_PER_QUARTER)
    ends = np.rint((np.asarray(starts, dtype=np.float64) + durations - offset_beats) * STEPS_PER_QUARTER)
    ends = np.maximum(ends, start_steps + 1)
    count = len(start_steps)
    return list(zip(start_steps.astype(int).tolist(), ends.astype(int).tolist(),
                    np.asarray(pitches).astype(int).tolist(), [0] * count, strict=True))  # fmt: skip


def top_voice(notes: Iterable[Note], offset_beats: float = 0.0) -> list[tuple[int, int, int, int]]:
    """Reduce quantised notes to one voice: (start_step, end_step, pitch, velocity), sorted, no overlap.

    At each onset step the highest new note is a candidate; it takes over if nothing sounds, or if it
    is at least as high as the sounding note (which is then cut). A lower note starting under a held
    higher note is dropped, so a held soprano is not interrupted by the inner voices.
    """
    return top_voice_of_steps(_quantized(notes, offset_beats))


def top_voice_of_steps(rows: Iterable[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """top_voice on already quantised (start_step, end_step, pitch, velocity) rows."""
    by_start: dict[int, tuple[int, int, int, int]] = {}
    for start, end, pitch, velocity in rows:
        best = by_start.get(start)
        if best is None or (pitch, end) > (best[2], best[1]):
            by_start[start] = (start, end, pitch, velocity)
    voice: list[tuple[int, int, int, int]] = []
    for start in sorted(by_start):
        candidate = by_start[start]
        if voice:
            last = voice[-1]
            if last[1] > start:
                if candidate[2] < last[2]:
                    continue
                voice[-1] = (last[0], start, last[2], last[3])
        voice.append(candidate)
    return voice


def encode_notes(notes: Iterable[Note], meter: Meter, bars: int, offset_beats: float = 0.0) -> np.ndarray:
    """Tokens (int64, shape [bars * steps_per_bar(meter)]) of the notes from `offset_beats` on.

    Polyphony is reduced to the top voice, pitches outside 21..108 are folded in by octaves, notes
    are quantised to the nearest sixteenth, anything past the last step is cut.
    """
    if bars < 1:
        raise ValueError(f"bars must be >= 1, got {bars}")
    return encode_steps(_quantized(notes, offset_beats), bars * steps_per_bar(meter))


def encode_steps(rows: Iterable[tuple[int, int, int, int]], n_steps: int) -> np.ndarray:
    """Tokens [n_steps] of quantised (start_step, end_step, pitch, velocity) rows (see encode_notes)."""
    tokens = np.zeros(n_steps, dtype=np.int64)
    previous_end = None
    for start, end, pitch, _velocity in top_voice_of_steps(rows):
        if start >= n_steps or end <= 0:
            continue
        if start < 0:
            continue  # a note begun before the window is not a note-on inside it
        if previous_end is not None and previous_end < start and previous_end < n_steps:
            tokens[previous_end] = NOTE_OFF
        tokens[start] = pitch_to_token(fold_pitch(pitch))
        previous_end = end
    if previous_end is not None and previous_end < n_steps:
        tokens[previous_end] = NOTE_OFF
    return tokens


def encode_phrase(phrase: Phrase) -> np.ndarray:
    """Tokens of a whole phrase: shape [phrase.bars * steps_per_bar(phrase.meter)]."""
    return encode_notes(phrase.notes, phrase.meter, phrase.bars)


def validate_tokens(tokens: np.ndarray | Sequence[int], meter: Meter | None = None) -> np.ndarray:
    """The tokens as a 1-D int64 array, or ValueError saying what is wrong with them."""
    array = np.asarray(tokens)
    if array.ndim != 1:
        raise ValueError(f"melody tokens must be a 1-D array, got shape {array.shape}")
    if array.size == 0:
        raise ValueError("melody tokens are empty")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ValueError("melody tokens must be whole numbers (class indices), got fractional values")
    elif array.dtype.kind not in "iu":
        raise ValueError(f"melody tokens must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.min() < 0 or array.max() >= NUM_CLASSES:
        raise ValueError(f"melody tokens must be in 0..{NUM_CLASSES - 1}, got {array.min()}..{array.max()}")
    if meter is not None and array.size % steps_per_bar(meter):
        raise ValueError(
            f"{array.size} tokens are not whole bars of {meter} ({steps_per_bar(meter)} steps per bar)"
        )
    return array


def _velocity_picker(source: Phrase | Sequence[Note] | None, default: int):
    """A function start_beat -> velocity reading the source's top note sounding (or nearest) there."""
    notes = list(source.notes if isinstance(source, Phrase) else (source or ()))
    if not notes:
        return lambda _beat: default

    def pick(beat: float) -> int:
        sounding = [n for n in notes if n.start - 1e-6 <= beat < n.end - 1e-6]
        if sounding:
            return max(sounding, key=lambda n: n.pitch).velocity
        return min(notes, key=lambda n: (abs(n.start - beat), -n.pitch)).velocity

    return pick


def decode_tokens(
    tokens: np.ndarray | Sequence[int],
    meter: Meter | None = None,
    velocity_source: Phrase | Sequence[Note] | None = None,
    default_velocity: int = DEFAULT_VELOCITY,
) -> Phrase:
    """The phrase the tokens spell (whole bars of `meter`, default 4/4).

    Velocities come from `velocity_source` (e.g. the phrase the model was given): each decoded note
    takes the velocity of the source's top note sounding at its start, else of the nearest source
    onset; `default_velocity` is used only when there is no source. A NOTE_OFF while nothing sounds
    is a no-op. Raises ValueError for arrays that are not token sequences.
    """
    meter = meter or Meter()
    array = validate_tokens(tokens, meter)
    velocity_at = _velocity_picker(velocity_source, default_velocity)
    notes: list[Note] = []
    sounding: tuple[int, int] | None = None  # (start_step, pitch)

    def close(end_step: int) -> None:
        start_step, pitch = sounding
        start = start_step / STEPS_PER_QUARTER
        notes.append(Note(pitch, velocity_at(start), start, (end_step - start_step) / STEPS_PER_QUARTER))

    for step, token in enumerate(array.tolist()):
        if token == HOLD:
            continue
        if sounding is not None:
            close(step)
            sounding = None
        if token != NOTE_OFF:
            sounding = (step, token_to_pitch(token))
    if sounding is not None:
        close(array.size)
    return Phrase(notes=tuple(notes), bars=array.size // steps_per_bar(meter), meter=meter)


def transpose_tokens(tokens: np.ndarray, semitones: int) -> np.ndarray:
    """Tokens moved by `semitones` (any shape); ValueError if a note would leave 21..108."""
    array = np.asarray(tokens, dtype=np.int64)
    notes = array >= FIRST_NOTE_TOKEN
    moved = array.copy()
    moved[notes] += semitones
    if np.any(moved[notes] < FIRST_NOTE_TOKEN) or np.any(moved[notes] >= NUM_CLASSES):
        raise ValueError(f"transposing by {semitones} semitones leaves the melody range")
    return moved


def allowed_transpositions(tokens: np.ndarray, max_semitones: int = MAX_TRANSPOSITION) -> list[int]:
    """Shifts in -max..+max that keep every note of a 1-D token array in range."""
    array = np.asarray(tokens, dtype=np.int64)
    note_tokens = array[array >= FIRST_NOTE_TOKEN]
    if note_tokens.size == 0:
        return [0]
    low = max(-max_semitones, FIRST_NOTE_TOKEN - int(note_tokens.min()))
    high = min(max_semitones, NUM_CLASSES - 1 - int(note_tokens.max()))
    return list(range(low, high + 1))


def augment_transpose(
    tokens: np.ndarray, rng: np.random.Generator, max_semitones: int = MAX_TRANSPOSITION
) -> np.ndarray:
    """Training-time augmentation: each row (or the 1-D array) moved by a random shift in ±max_semitones,
    chosen uniformly among the shifts that keep all of that row's notes in range."""
    array = np.asarray(tokens, dtype=np.int64)
    if array.ndim == 1:
        return transpose_tokens(array, int(rng.choice(allowed_transpositions(array, max_semitones))))
    if array.ndim != 2:
        raise ValueError(f"expected a token array of shape [steps] or [batch, steps], got {array.shape}")
    shifts = [int(rng.choice(allowed_transpositions(row, max_semitones))) for row in array]
    return np.stack([transpose_tokens(row, shift) for row, shift in zip(array, shifts, strict=True)])
