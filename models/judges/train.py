"""`musebridge train judges`: the two genre judges of several genres, on real phrases only.

    musebridge train judges --genres celtic folk chorale renaissance -o models/checkpoints

Writes genre_classifier_<genres>.pt (the CNN of Brunner et al. 2018 with one output per genre) and
feature_judge_<genres>.pt (judges/features.py), each with a .yaml card holding its test accuracy.
Train phrases are balanced by downsampling to the smallest genre (capped by --max-phrases), as the
CycleGAN's classifier; the CNN keeps the epoch best on valid. Neither ever sees a transferred phrase.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def judge_paths(out_dir: Path, genres: tuple[str, ...]) -> tuple[Path, Path]:
    """(CNN classifier path, feature judge path) for these genres in `out_dir`."""
    stem = "_".join(genres)
    return out_dir / f"genre_classifier_{stem}.pt", out_dir / f"feature_judge_{stem}.pt"


def run(args: argparse.Namespace) -> int:
    from musebridge.commands.train import command_line
    from musebridge.errors import UserError
    from musebridge.models.cyclegan.train import write_card
    from musebridge.models.judges.classifier import (
        ClassifierConfig,
        GenreClassifier,
        save_classifier,
        train_classifier_sets,
    )
    from musebridge.models.judges.features import fit_feature_judge, save_feature_judge
    from musebridge.models.umt.data import balanced, genre_rolls
    from musebridge.models.umt.eval import cnn_judge, feature_judge

    torch.set_num_threads(max(1, args.threads))
    genres = tuple(args.genres)
    if len(set(genres)) != len(genres) or len(genres) < 2:
        raise UserError("the judges need two or more different genres (--genre A --genre B, or --genres A B)")
    try:
        sets = genre_rolls(genres, args.dataset)
    except ValueError as error:
        raise UserError(str(error)) from error
    rng = np.random.default_rng(args.seed)
    size = min(len(sets[g]["train"]) for g in genres)
    if args.max_phrases > 0:
        size = min(size, args.max_phrases)
    train = [balanced(sets[g]["train"], size, rng) for g in genres]
    valid = [sets[g]["valid"] for g in genres]
    test = {g: sets[g]["test"] for g in genres}
    out = args.output_dir.expanduser()
    out.mkdir(parents=True, exist_ok=True)
    cnn_path, feature_path = judge_paths(out, genres)
    command = command_line()
    data = {
        "source": "built dataset (genres.yaml domains); real phrases only, never transfers",
        "train_phrases_per_genre": size,
        "test_phrases": {g: int(len(r)) for g, r in test.items()},
    }
    print(f"judges for {', '.join(genres)}: {size} train phrases per genre")

    classifier = GenreClassifier(ClassifierConfig(genres=len(genres)))
    fit = train_classifier_sets(classifier, train, args.epochs, args.seed, valid=valid)
    save_classifier(classifier, cnn_path, genres)
    accuracy = cnn_judge(classifier, genres).accuracy(test)
    write_card(cnn_path.with_suffix(".yaml"), {
        "model": "genre classifier (Brunner et al. 2018 CNN, one output per genre), for evaluation only",
        "genres": list(genres), "data": data, "config": classifier.config.to_dict(), "seed": args.seed,
        "command": command, "training": fit, "test_accuracy": round(100 * accuracy, 1),
    })  # fmt: skip
    print(f"wrote {cnn_path}: test accuracy {100 * accuracy:.1f}%")

    judge = fit_feature_judge(genres, train, l2=args.l2)
    save_feature_judge(judge, feature_path)
    accuracy_f = feature_judge(judge).accuracy(test)
    write_card(feature_path.with_suffix(".yaml"), {
        "model": "feature-based genre judge (transposition-invariant pitch, interval, rhythm and texture "
        "statistics; multinomial logistic regression), for evaluation only",
        "genres": list(genres), "data": data, "l2": args.l2, "seed": args.seed, "command": command,
        "valid_accuracy": round(100 * judge.accuracy(valid), 1), "test_accuracy": round(100 * accuracy_f, 1),
    })  # fmt: skip
    print(f"wrote {feature_path}: test accuracy {100 * accuracy_f:.1f}%")
    return 0
