"""Evaluation of the continuation models: C-RNN-GAN statistics, WaveNet NLL/accuracy, continuation fit.

The four statistics follow olofmogren/c-rnn-gan midi_statistics.py (get_polyphony_score,
max_likelihood_scale, repetitions, tone_span), computed per phrase and averaged over phrases, as its
get_gnuplot_line does. Their quirks are kept on purpose, so figures compare with the paper's curves:

- polyphony: onsets are walked in time order; every note-on adds one to the mono or poly count of
  the onset group it belongs to *as seen so far*, and each group is counted once more when the next
  group begins; the walk starts with "previous onset" = 0. Score = poly / (poly + mono).
- scale consistency: for each of 12 roots x {major, natural minor, harmonic minor}, the fraction of
  tones with (pitch % 12 - root) in the scale's steps, *without* wrapping the difference mod 12
  (a pitch class below the root never counts); the best fraction wins.
- repetitions: for lengths l in 2..min(n // 2, 10) - 1, the number of pairs i < j, j >= i + l,
  i < n - 2l, j < n - l with tones[i:i+l] == tones[j:j+l]; "repetitions" is the sum over l.
- tone span: max - min pitch in semitones.

Continuation fit uses a proper (mod 12) scale estimate of the call: the fraction of answer notes in the
call's best scale, the fraction inside the call's pitch range widened by 2 semitones, and the distance
between the mean pitches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from musebridge.core.music import Note, Phrase

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "natural_minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}
PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
STAT_KEYS = ("polyphony", "scale_consistency", "repetitions", "tone_span")
ONSET_DECIMALS = 6  # onsets equal to 1e-6 beats are one event (the reference compares integer ticks)


def _notes(phrase_or_notes: Phrase | Iterable[Note]) -> list[Note]:
    notes = phrase_or_notes.notes if isinstance(phrase_or_notes, Phrase) else phrase_or_notes
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def tones(phrase_or_notes: Phrase | Iterable[Note]) -> list[int]:
    """Pitches in onset order (pitch order within an onset), as the reference's get_tones lists them."""
    return [n.pitch for n in _notes(phrase_or_notes)]


def polyphony_score(onsets: Sequence[float]) -> float:
    """Reference get_polyphony_score over note-on times (any unit; equal values are one event)."""
    ticks = sorted(round(float(t), ONSET_DECIMALS) for t in onsets)
    mono = poly = 0
    last = 0.0
    in_event = 0
    for tick in ticks:
        if tick == last:
            in_event += 1
        else:
            if in_event == 1:
                mono += 1
            elif in_event > 1:
                poly += 1
            in_event = 1
        last = tick
        if in_event == 1:
            mono += 1
        elif in_event > 1:
            poly += 1
    if poly == 0:
        return 0.0
    return poly / (poly + mono)


def scale_consistency(pitches: Sequence[int]) -> tuple[str, float]:
    """Reference max_likelihood_scale: (best "root scale" name, fraction of tones in it)."""
    if not pitches:
        return ("C major", 0.0)
    best_name, best = "", -1.0
    for root, name in enumerate(PITCH_NAMES):
        for label, steps in SCALES.items():
            count = sum(1 for p in pitches if (p % 12 - root) in steps)
            score = count / len(pitches)
            if score > best:
                best_name, best = f"{name} {label}", score
    return best_name, best


def repetitions(pitches: Sequence[int]) -> dict[int, int]:
    """Reference repetitions(): {length: count} for lengths 2..min(n // 2, 10) - 1, zero counts left out."""
    seq = list(pitches)
    n = len(seq)
    found: dict[int, int] = {}
    for length in range(2, min(n // 2, 10)):
        count = 0
        for i in range(n - 2 * length):
            head = seq[i : i + length]
            for j in range(i + length, n - length):
                if seq[j : j + length] == head:
                    count += 1
        if count:
            found[length] = count
    return found


def phrase_statistics(phrase_or_notes: Phrase | Iterable[Note]) -> dict[str, float] | None:
    """The four statistics of one phrase (None for an empty phrase, which the reference skips)."""
    notes = _notes(phrase_or_notes)
    if not notes:
        return None
    pitches = [n.pitch for n in notes]
    reps = repetitions(pitches)
    stats = {
        "polyphony": polyphony_score([n.start for n in notes]),
        "scale_consistency": scale_consistency(pitches)[1],
        "repetitions": float(sum(reps.values())),
        "tone_span": float(max(pitches) - min(pitches)),
        "num_tones": float(len(pitches)),
    }
    for length in range(2, 10):
        stats[f"repetitions_{length}"] = float(reps.get(length, 0))
    return stats


def mean_statistics(phrases: Iterable[Phrase | Iterable[Note]]) -> dict[str, float]:
    """Per-phrase statistics averaged over the non-empty phrases; `phrases` and `empty` count them."""
    rows = []
    empty = 0
    for phrase in phrases:
        stats = phrase_statistics(phrase)
        if stats is None:
            empty += 1
        else:
            rows.append(stats)
    out: dict[str, float] = {"phrases": float(len(rows)), "empty": float(empty)}
    if rows:
        for key in rows[0]:
            out[key] = float(np.mean([r[key] for r in rows]))
    return out


def relative_gaps(model: dict[str, float], real: dict[str, float], keys: Sequence[str] = STAT_KEYS) -> dict:
    """|model - real| / |real| per statistic, and whether each is within 10% (the goal)."""
    gaps = {}
    for key in keys:
        if key not in model or key not in real:
            continue
        ref = real[key]
        gap = abs(model[key] - ref) / abs(ref) if ref else (0.0 if model[key] == 0 else math.inf)
        gaps[key] = {"gap": gap, "within_10pct": gap <= 0.10}
    return gaps


# ---- continuation fit ------------------------------------------------------------------------------


def estimate_scale(pitches: Sequence[int]) -> tuple[int, str, float]:
    """(root pitch class, scale label, fraction) of the best-fitting scale, pitch classes mod 12."""
    if not pitches:
        return (0, "major", 0.0)
    classes = np.bincount(np.asarray(pitches) % 12, minlength=12)
    best = (0, "major", -1.0)
    for root in range(12):
        for label, steps in SCALES.items():
            inside = sum(int(classes[(root + s) % 12]) for s in steps)
            fraction = inside / len(pitches)
            if fraction > best[2]:
                best = (root, label, fraction)
    return best


def in_scale_fraction(pitches: Sequence[int], root: int, label: str) -> float:
    """Fraction of pitches whose pitch class is in `label` built on `root`."""
    if not pitches:
        return 0.0
    members = {(root + s) % 12 for s in SCALES[label]}
    return sum(1 for p in pitches if p % 12 in members) / len(pitches)


def continuation_fit(call: Phrase, answer: Phrase, range_margin: int = 2) -> dict[str, float] | None:
    """How the answer agrees with the call: key (in_scale), range (in_range) and mean pitch distance.

    None when the call or the answer has no notes."""
    call_pitches, answer_pitches = tones(call), tones(answer)
    if not call_pitches or not answer_pitches:
        return None
    root, label, _ = estimate_scale(call_pitches)
    low, high = min(call_pitches) - range_margin, max(call_pitches) + range_margin
    return {
        "in_scale": in_scale_fraction(answer_pitches, root, label),
        "in_range": sum(1 for p in answer_pitches if low <= p <= high) / len(answer_pitches),
        "mean_pitch_distance": abs(float(np.mean(answer_pitches)) - float(np.mean(call_pitches))),
    }


def mean_fit(pairs: Iterable[tuple[Phrase, Phrase]]) -> dict[str, float]:
    """continuation_fit averaged over (call, answer) pairs; `pairs` counts the usable ones."""
    rows = [f for f in (continuation_fit(c, a) for c, a in pairs) if f is not None]
    out: dict[str, float] = {"pairs": float(len(rows))}
    if rows:
        for key in rows[0]:
            out[key] = float(np.mean([r[key] for r in rows]))
    return out
