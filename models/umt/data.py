"""Phrases for the universal translator: 4-bar 4/4 piano rolls (N, 64, 84) per genre and split.

Cut exactly as the CycleGAN's (cyclegan/train.py `split_rolls`: non-overlapping 4-bar windows of 4/4
runs, 2/4, 2/2 and 4/2 regrouped, at least 4 onsets), so both families are judged on the same test
phrases. Genres come from the built dataset (genres.yaml domains) or from MIDI folders (split by file,
as the dataset splits by tune).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

SPLITS = ("train", "valid", "test")


def genre_rolls(
    genres: Sequence[str], dataset: Path | None = None, splits: Sequence[str] = SPLITS
) -> dict[str, dict[str, np.ndarray]]:
    """{genre: {split: rolls uint8 (N, 64, 84)}} from the built dataset; ValueError for an unknown genre
    or one without a train phrase."""
    from musebridge.models.cyclegan.train import split_rolls
    from musebridge.models.data.dataset import TuneDataset

    data = TuneDataset.load(dataset)
    missing = [g for g in genres if g not in data.genres]
    if missing:
        raise ValueError(
            f"genre(s) {', '.join(missing)} not in the dataset (it has: {', '.join(data.genres)}); "
            "build them with `musebridge data build`"
        )
    sets = {g: {s: split_rolls(data, g, s) for s in splits} for g in genres}
    for genre, by_split in sets.items():
        if "train" in by_split and len(by_split["train"]) == 0:
            raise ValueError(f"genre {genre!r} has no complete 4-bar 4/4 phrase in its train split")
    return sets


def folder_rolls(name: str, folder: Path) -> dict[str, np.ndarray]:
    """{split: rolls} of a folder of MIDI files as genre `name` (split by file); ValueError if unusable."""
    from musebridge.models.cyclegan.train import folder_tunes, split_rolls
    from musebridge.models.data.dataset import TuneDataset

    folder = folder.expanduser()
    if not folder.is_dir():
        raise ValueError(f"MIDI folder {folder} does not exist")
    data = TuneDataset(folder_tunes(folder, name))
    sets = {s: split_rolls(data, name, s) for s in SPLITS}
    if len(sets["train"]) == 0:
        raise ValueError(f"{folder} has no complete 4-bar 4/4 phrase in its train split")
    return sets


def balanced(rolls: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """At most `size` rolls picked without replacement (sorted, reproducible by `rng`); all if fewer."""
    if size <= 0 or len(rolls) <= size:
        return rolls
    return rolls[np.sort(rng.choice(len(rolls), size, replace=False))]
