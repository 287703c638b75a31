"""`musebridge eval <model> ...`: measure a checkpoint on the test split and write JSON.

EVALUATORS maps a model name to "module:function" registering `eval <name>` (later issues add
"transfer", "continue"... in their own modules).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from musebridge.commands import add_model_subcommands
from musebridge.commands.arguments import add_dataset_option, add_genre_options
from musebridge.errors import UserError

EVALUATORS: dict[str, str] = {
    "vae": "musebridge.commands.eval:register_vae",
    "continue": "musebridge.commands.continue_:register_eval",
    "transfer": "musebridge.commands.transfer:register_eval",
    "umt": "musebridge.commands.umt:register_eval",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="measure a trained model (vae, ...) on the test split")
    add_model_subcommands(parser, "eval_model", EVALUATORS)


def register_vae(models: argparse._SubParsersAction) -> None:
    parser = models.add_parser(
        "vae",
        help="MusicVAE: reconstruction accuracy, interpolation quality, prior samples, attributes",
        description="Reconstruction accuracy (teacher-forced and sampled argmax, per step), Hamming "
        "curves of A->B interpolations with their monotonicity and plausibility, prior-sample "
        "plausibility and attribute-vector effects, on the test split of the checkpoint's genres.",
    )
    parser.add_argument("--checkpoint", type=Path, help="MusicVAE .pt (default: the shipped one for --bars)")
    parser.add_argument("--bars", type=int, default=2, choices=(2, 4), help="shipped checkpoint to use")
    add_dataset_option(parser, "dataset .npz (default <cache>/dataset.npz)")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"))
    add_genre_options(parser, "genre", "the checkpoint's", "measure in domain")
    parser.add_argument("--ood-genre", action="append", metavar="NAME",
                        help="held-out genre measured whole beside the in-domain split (repeatable; "
                        "default: every out-of-domain genre of the dataset)")
    parser.add_argument("--no-ood", action="store_true", help="skip the out-of-domain collections")
    parser.add_argument("--pairs", type=int, default=64, help="interpolation pairs (default 64)")
    parser.add_argument("--limit", type=int, default=0, help="use at most N windows (seeded pick; 0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--json", type=Path, help="write the metrics here (default <checkpoint>.eval.json)")
    parser.add_argument("--update-card", action="store_true", help="write the metrics into the model card")
    parser.set_defaults(handler=run_eval_vae)


def _ood_windows(data, wanted: list[str] | None, in_domain: list[str], bars: int) -> dict:
    """{held-out genre: melody tokens of the whole collection}; UserError for a genre that is not held
    out in this dataset or that the model was measured in-domain on."""
    from musebridge.models.data import melody_windows

    names = wanted if wanted is not None else list(data.out_of_domain)
    wrong = [n for n in names if n not in data.out_of_domain or n in in_domain]
    if wrong:
        held = ", ".join(data.out_of_domain) or "none"
        raise UserError(f"not a held-out genre of this dataset: {', '.join(wrong)} (held out: {held})")
    return {name: melody_windows(data, bars=bars, split=None, genres=[name]).tokens for name in names}


def run_eval_vae(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    import yaml

    from musebridge.commands.train import command_line, load_vae_windows
    from musebridge.models.musicvae.eval import (
        evaluate,
        evaluate_out_of_domain,
        format_report,
        format_side_by_side,
    )
    from musebridge.models.musicvae.model import load_checkpoint
    from musebridge.models.musicvae.phrase_model import shipped_checkpoint
    from musebridge.models.musicvae.train import card_path
    from musebridge.registry import require_checkpoint, resolve_device

    if args.pairs < 1 or args.limit < 0:
        raise UserError("--pairs must be >= 1 and --limit >= 0")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    path = require_checkpoint(args.checkpoint or shipped_checkpoint(args.bars), model="musicvae")
    try:
        model, saved = load_checkpoint(str(path), resolve_device(args.device))
    except Exception as error:  # noqa: BLE001 - any load failure means an unusable file
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise UserError(f"{path}: not a usable MusicVAE checkpoint ({reason})") from error
    genres = sorted(args.genre or saved.get("genres") or [])
    if not genres:
        raise UserError(f"{path}: the checkpoint names no genres, so its test split is unknown")
    data, windows = load_vae_windows(args.dataset, genres, model.config.bars, args.split)
    tokens = windows.tokens
    if args.limit and len(tokens) > args.limit:
        pick = np.random.default_rng(args.seed).choice(len(tokens), size=args.limit, replace=False)
        tokens = tokens[np.sort(pick)]
    if len(tokens) < 2:
        raise UserError(f"only {len(tokens)} {args.split} windows: too few to evaluate")
    metrics = evaluate(model, tokens, pairs=args.pairs, seed=args.seed)
    metrics["checkpoint"] = path.name
    metrics["split"] = args.split
    metrics["genres"] = genres
    metrics["trained_genres"] = list(saved.get("genres") or [])
    metrics["command"] = command_line()
    print(format_report(metrics))
    ood_sets = {} if args.no_ood else _ood_windows(data, args.ood_genre, genres, model.config.bars)
    if ood_sets:
        metrics["out_of_domain"] = evaluate_out_of_domain(model, ood_sets, pairs=args.pairs, seed=args.seed)
        label = f"in domain: {args.split} split of {', '.join(genres)}"
        print(format_side_by_side(metrics, metrics["out_of_domain"], label))
    out = args.json or path.with_suffix(".eval.json")
    out.write_text(json.dumps(metrics, indent=1))
    print(f"wrote {out}")
    if args.update_card:
        card_file = card_path(path)
        card = yaml.safe_load(card_file.read_text()) if card_file.exists() else {}
        summary = {
            "split": args.split,
            "windows": int(len(tokens)),
            "command": metrics["command"],
            "reconstruction_teacher_forced": round(metrics["reconstruction"]["teacher_forced"], 4),
            "reconstruction_sampled": round(metrics["reconstruction"]["sampled"], 4),
            "paper_reference": metrics["paper_reference"],
            "interpolation": {
                k: metrics["interpolation"][k]
                for k in ("pairs", "alphas", "hamming_to_a", "hamming_to_b", "mean_curve_monotone",
                          "pairs_monotone_to_a", "pairs_monotone_to_b", "intermediate_plausible")
            },
            "plausible_ranges": metrics["data_ranges"],
            "prior_samples": metrics["prior_samples"],
            "attributes": metrics["attributes"],
        }
        if "out_of_domain" in metrics:
            summary["out_of_domain"] = metrics["out_of_domain"]
        card["metrics"] = summary
        card_file.write_text(yaml.safe_dump(card, sort_keys=False, width=100))
        print(f"updated {card_file}")
    return 0
