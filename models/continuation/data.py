"""Training data for the continuation models: dataset windows and synthetic toy melodies.

WaveNet reads melody-token windows [N, T]; the C-RNN-GAN reads scaled tone-step sequences [N, L, F].
Used by models/continuation/train.py (`musebridge train continue`) and the unit tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from musebridge.models.continuation.crnngan import to_model_space
from musebridge.models.encoding import melody
from musebridge.models.encoding import tones as tone_encoding


def wavenet_windows(
    dataset, split: str, bars: int = 8, genres: Sequence[str] | None = None, hop_bars: int = 2
):
    """8-bar 4/4 melody-token windows of a split (EncodedWindows: .tokens [N, T], .genre [N])."""
    from musebridge.models.data.encoded import melody_windows

    return melody_windows(dataset, bars=bars, split=split, genres=genres, hop_bars=hop_bars, min_notes=4)


def crnngan_sequences(
    dataset,
    split: str,
    length: int = 32,
    bars: int = 8,
    genres: Sequence[str] | None = None,
    hop_bars: int = 4,
    tones_per_step: int = tone_encoding.TONES_PER_STEP,
) -> np.ndarray:
    """Scaled step sequences [N, length, F]: the first `length` steps of each `bars`-bar 4/4 window that has
    at least that many onsets (times from the window's downbeat)."""
    from musebridge.core.music import Meter

    rows = []
    for window in dataset.windows(bars, split, genres, Meter(4, 4), hop_bars, min_notes=length, regroup=True):
        array = tone_encoding.encode_notes(dataset.window_notes(window), tones_per_step)
        if array.shape[0] >= length:
            rows.append(to_model_space(array[:length], tones_per_step))
    width = tones_per_step * tone_encoding.N_FEATURES
    return np.stack(rows) if rows else np.zeros((0, length, width), dtype=np.float32)


def synthetic_tokens(count: int, steps: int, seed: int = 0) -> np.ndarray:
    """Toy melodies (scales and arpeggios in eighth notes) for smoke runs and tests: [count, steps]."""
    rng = np.random.default_rng(seed)
    out = np.zeros((count, steps), dtype=np.int64)
    patterns = ([0, 2, 4, 5, 7, 9, 11, 12], [0, 4, 7, 12, 7, 4, 0, 4], [12, 11, 9, 7, 5, 4, 2, 0])
    for row in range(count):
        root, pattern = int(rng.integers(55, 67)), patterns[int(rng.integers(len(patterns)))]
        for k, step in enumerate(range(0, steps, 2)):
            out[row, step] = melody.pitch_to_token(root + pattern[k % len(pattern)])
    return out


def synthetic_steps(count: int, length: int, seed: int = 0, tones_per_step: int = 3) -> np.ndarray:
    """Scaled step sequences of the synthetic melodies: [count, length, F]."""
    from musebridge.core.music import Meter

    tokens = synthetic_tokens(count, max(2 * length, 16), seed)
    rows = []
    for row in tokens:
        phrase = melody.decode_tokens(row, Meter(4, 4))
        rows.append(
            to_model_space(tone_encoding.encode_phrase(phrase, tones_per_step)[:length], tones_per_step)
        )
    return np.stack(rows)
