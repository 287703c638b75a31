"""Symbolic counterpart of the UMT paper's local pitch augmentation (Mor et al. 2019, section 3.2).

The paper pitch-shifts random 0.25-0.5 s segments of the encoder's input by up to +-0.5 semitone while
the decoder must reproduce the clean input, so that the encoder cannot pass the exact input through
and the decoders learn to re-voice rather than copy. On a piano roll (4 steps a quarter note) we:

- transpose `segments` random segments of 2..8 steps (an eighth to half a bar, ~0.25-1 s at 120 bpm)
  by +1 or -1 semitone (the smallest pitch move a roll has);
- drop each note with probability `drop`;
- move each note's onset one step earlier or later with probability `nudge` (its end stays).

Only the encoder's input is changed; the decoder's target stays the clean phrase. Pure numpy.
"""

from __future__ import annotations

import numpy as np


def notes_of(roll: np.ndarray) -> list[tuple[int, int, int]]:
    """(pitch column, start step, end step) of every run of active steps in a roll [T, P]."""
    padded = np.zeros((roll.shape[0] + 2, roll.shape[1]), dtype=np.int8)
    padded[1:-1] = roll.astype(bool)
    edges = np.diff(padded, axis=0)
    starts_t, starts_p = np.nonzero(edges == 1)
    ends_t, ends_p = np.nonzero(edges == -1)
    starts = sorted(zip(starts_p.tolist(), starts_t.tolist(), strict=True))
    ends = sorted(zip(ends_p.tolist(), ends_t.tolist(), strict=True))
    return [(p, s, e) for (p, s), (_p, e) in zip(starts, ends, strict=True)]


def augment_roll(
    roll: np.ndarray,
    rng: np.random.Generator,
    segments: int = 2,
    segment_steps: tuple[int, int] = (2, 8),
    drop: float = 0.1,
    nudge: float = 0.1,
) -> np.ndarray:
    """A distorted copy (uint8 [T, P]) of a binary roll [T, P]; the input is not modified."""
    steps, pitches = roll.shape
    out = np.zeros((steps, pitches), dtype=np.uint8)
    for pitch, start, end in notes_of(roll):
        if drop > 0 and rng.random() < drop:
            continue
        if nudge > 0 and rng.random() < nudge:
            start = int(np.clip(start + (1 if rng.random() < 0.5 else -1), 0, end - 1))
        out[start:end, pitch] = 1
    low, high = segment_steps
    for _ in range(segments):
        length = int(rng.integers(low, high + 1))
        first = int(rng.integers(0, max(1, steps - length + 1)))
        shift = 1 if rng.random() < 0.5 else -1
        out[first : first + length] = np.roll(out[first : first + length], shift, axis=1)
        # a note rolled past the roll's edge is dropped, not wrapped to the other end
        if shift == 1:
            out[first : first + length, 0] = 0
        else:
            out[first : first + length, -1] = 0
    return out


def augment_batch(rolls: np.ndarray, rng: np.random.Generator, **options) -> np.ndarray:
    """augment_roll on every roll of a batch [B, T, P] -> uint8 [B, T, P]."""
    return (
        np.stack([augment_roll(r, rng, **options) for r in rolls]) if len(rolls) else rolls.astype(np.uint8)
    )
