"""`musebridge train umt`, `musebridge eval umt` and `musebridge train judges`: the universal translator
(Mor et al. 2019 on piano rolls, models/umt/) and the two genre judges that evaluate it.

Registered through the TRAINERS / EVALUATORS tables of commands/train.py and commands/eval.py;
torch loads in the handlers only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from musebridge.commands.arguments import add_dataset_option, add_genre_options, guidance

DEFAULT_GENRES = ["celtic", "folk", "chorale", "renaissance"]
CONFIG_NAMES = ("tiny", "cpu_small")  # models/umt/model.py CONFIGS, here so --help needs no torch


def register_train(models: argparse._SubParsersAction) -> None:
    """`musebridge train umt`: shared encoder + a decoder per genre, or one new decoder (--add-genre)."""
    parser = models.add_parser(
        "umt",
        help="universal translation (Mor et al. 2019): one encoder, a decoder per genre",
        description="Train the shared encoder, one WaveNet-style decoder per genre and the domain-"
        "confusion classifier on 4-bar phrases of the built dataset's genres; or, with --add-genre "
        "NAME=DIR --checkpoint umt.pt, only a new decoder for a MIDI folder against the frozen encoder.",
    )
    add_genre_options(parser, "genres", " ".join(DEFAULT_GENRES), "train on")
    parser.add_argument("--add-genre", metavar="NAME=DIR", help="train only a decoder for this MIDI folder")
    parser.add_argument(
        "--checkpoint", type=Path, help="the model to extend (--add-genre) or to set (--threshold-only)"
    )
    parser.add_argument(
        "--threshold-only",
        action="store_true",
        help="no training: choose the greedy threshold of --checkpoint on valid and store it",
    )
    add_dataset_option(parser, "dataset .npz (default: the built cache)")
    parser.add_argument("--config", default="cpu_small", choices=CONFIG_NAMES)
    parser.add_argument("--bottleneck", choices=("continuous", "argmax"), help="override the config's")
    parser.add_argument("--no-augment", action="store_true", help="no input augmentation (the ablation)")
    parser.add_argument("--confusion-weight", type=float, help="lambda of the domain confusion (1e-2)")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--checkpoint-every", type=int, default=250,
                        help="validate, save the checkpoint and run.pt every N steps")
    parser.add_argument("--log-every", type=int, default=50, help="log the mean losses every N steps")
    parser.add_argument("--max-phrases", type=int, default=0, help="cap train phrases per genre (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "-o", "--output", type=Path, help="checkpoint (default models/checkpoints/umt.pt; umt_NAME.pt)"
    )
    from musebridge.commands.train import add_run_folder_arguments

    add_run_folder_arguments(parser, "runs/umt, or runs/umt-NAME with --add-genre")
    parser.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from musebridge.models.umt.train import run

    args.genres = args.genres or list(DEFAULT_GENRES)
    return run(args)


def register_train_judges(models: argparse._SubParsersAction) -> None:
    """`musebridge train judges`: the CNN and the feature-based genre judges of several genres."""
    parser = models.add_parser(
        "judges",
        help="the two genre judges (CNN and feature-based) that evaluate transfers",
        description="Train the CNN genre classifier (Brunner et al. 2018, one output per genre) and the "
        "feature-based judge on real phrases of the genres; writes genre_classifier_<genres>.pt and "
        "feature_judge_<genres>.pt with cards.",
    )
    add_genre_options(parser, "genres", " ".join(DEFAULT_GENRES), "judge")
    add_dataset_option(parser, "dataset .npz (default: the built cache)")
    parser.add_argument("--epochs", type=int, default=6, help="CNN epochs (the best on valid is kept)")
    parser.add_argument("--l2", type=float, default=1e-3, help="feature judge: L2 weight")
    parser.add_argument("--max-phrases", type=int, default=0, help="cap train phrases per genre (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--output-dir", type=Path, default=Path("models/checkpoints"))
    parser.set_defaults(handler=_run_train_judges)


def _run_train_judges(args: argparse.Namespace) -> int:
    from musebridge.models.judges.train import run

    args.genres = args.genres or list(DEFAULT_GENRES)
    return run(args)


def register_eval(models: argparse._SubParsersAction) -> None:
    """`musebridge eval umt`: S under two judges in all directions, the CycleGAN alongside, unseen input."""
    from musebridge.models import CHECKPOINT_DIR

    parser = models.add_parser(
        "umt",
        help="universal translation: transfer strength under two judges for every ordered genre pair",
        description="Translate the held-out phrases of every genre into every other, and print Brunner's "
        "transfer strength S under the CNN and the feature-based judge, the input onsets kept, the "
        "shipped CycleGANs' figures on the same phrases, and S for input from a collection no genre "
        "uses. Writes JSON (default <checkpoint>.eval.json).",
    )
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT_DIR / "umt.pt")
    parser.add_argument("--judges-dir", type=Path, default=CHECKPOINT_DIR, help="folder of the judges")
    add_genre_options(parser, "genres", "all of the model's", "evaluate")
    parser.add_argument(
        "--unseen", default="madrigal", help="a dataset genre no model saw (skipped if not built; '' = none)"
    )
    add_dataset_option(parser, "dataset .npz (default: the built cache)")
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument(
        "--max-phrases", type=int, default=300, help="cap phrases per genre (a seeded pick; 0: all)"
    )
    parser.add_argument("--seed", type=int, default=0, help="which phrases --max-phrases keeps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--guidance",
        type=guidance,
        default=0.0,
        metavar="G",
        help="decode with this input guidance, 0..20 (default 0, the paper's decoding): how much of the "
        "input phrase the answer keeps, as transfer --guidance",
    )
    parser.add_argument("--json", type=Path, help="write the figures here (default <checkpoint>.eval.json)")
    parser.add_argument("--update-card", action="store_true", help="write the figures into the model card")
    parser.add_argument(
        "--update-cyclegan-cards",
        action="store_true",
        help="also write both judges' figures into the cards of the CycleGAN pairs beside the checkpoint",
    )
    parser.set_defaults(handler=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from musebridge.models.umt.eval import run

    return run(args)
