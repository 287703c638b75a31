"""Source balancing: how much each genre of a mixed training set is drawn.

A training loop that draws rows uniformly sees each genre in proportion to its window count, so the
largest collections (Palestrina's cantus lines, Essen) would drown the small ones (chorale sopranos,
the classical first violins). `balanced_rows` re-weights by repeating rows: genre g with n_g windows
gets the share n_g**power / sum_h n_h**power of the rows (power 1: as found, 0: equal shares, 0.5: the
square-root "temperature" sampling of multilingual language models, Conneau & Lample 2019). Rows are
repeated whole, so the loop stays a uniform draw and the transposition augmentation applies as before.
"""

from __future__ import annotations

import numpy as np


def genre_shares(genre: np.ndarray, power: float) -> dict[int, float]:
    """{genre index: share of the drawn rows} for int genre ids [N]; ValueError for power outside 0..1."""
    if not 0.0 <= power <= 1.0:
        raise ValueError(f"balance power must be in 0..1, got {power}")
    ids, counts = np.unique(np.asarray(genre), return_counts=True)
    weights = counts.astype(np.float64) ** power
    return {int(i): float(w / weights.sum()) for i, w in zip(ids, weights, strict=True)}


def balanced_rows(genre: np.ndarray, power: float = 0.5, seed: int = 0) -> np.ndarray:
    """Row indices (int64, with repeats, sorted) giving each genre its `genre_shares` share of len(genre)
    rows: whole copies of the genre's rows, then a seeded subset without repeats for the remainder."""
    genre = np.asarray(genre)
    total = len(genre)
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    out = []
    for gid, share in genre_shares(genre, power).items():
        rows = np.flatnonzero(genre == gid)
        target = max(1, int(round(share * total)))
        copies, rest = divmod(target, len(rows))
        out.append(np.tile(rows, copies))
        out.append(np.sort(rng.choice(rows, size=rest, replace=False)))
    return np.sort(np.concatenate(out)).astype(np.int64)
