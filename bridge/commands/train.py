"""`musebridge train <model> ...`: train a model on the cached dataset (`musebridge data build`).

Each model adds its own sub-subcommand: TRAINERS maps a name to "module:function", and the function
registers `train <name>` on the subparsers it is given (later issues add "transfer", "continue"...).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from musebridge.commands import add_model_subcommands
from musebridge.commands.arguments import add_dataset_option, add_genre_options
from musebridge.errors import UserError

TRAINERS: dict[str, str] = {
    "vae": "musebridge.commands.train:register_vae",
    "continue": "musebridge.commands.continue_:register_train",
    "transfer": "musebridge.commands.transfer:register_train",
    "umt": "musebridge.commands.umt:register_train",
    "judges": "musebridge.commands.umt:register_train_judges",
}

DEFAULT_VAE_GENRES = ("folk",)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model (vae, ...) on the cached dataset")
    add_model_subcommands(parser, "train_model", TRAINERS)


PATH_OPTIONS = (
    "--dataset", "--data", "--out-dir", "--run-dir", "--export", "--checkpoint", "--init-from", "--json"
)


def portable_path(text: str) -> str:
    """A path for a committed card: relative to the working folder if inside it, else its file name."""
    path = Path(text)
    if not path.is_absolute():
        return text
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.name


def command_line(drop: tuple[str, ...] = ()) -> str:
    """The command as typed, for model cards: program name `musebridge`, path options made portable
    (no machine-specific absolute paths), flags in `drop` left out."""
    words = [w for w in sys.argv[1:] if w not in drop]
    out = []
    for index, word in enumerate(words):
        previous = words[index - 1] if index else ""
        if previous in PATH_OPTIONS:
            word = portable_path(word)
        elif "=" in word and word.split("=", 1)[0] in PATH_OPTIONS:
            key, value = word.split("=", 1)
            word = f"{key}={portable_path(value)}"
        out.append(word)
    return shlex.join(["musebridge", *out])


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """['z_size=64', 'hierarchical=true'] -> typed values (int, float, bool or str)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {pair!r}")
        lowered = text.lower()
        value: Any
        if lowered in ("true", "false"):
            value = lowered == "true"
        else:
            try:
                value = int(text)
            except ValueError:
                try:
                    value = float(text)
                except ValueError:
                    value = text
        out[key.strip()] = value
    return out


# -- the shared trainer's options (models/training), for every `train <model>` --------------------------
def add_trainer_arguments(parser: argparse.ArgumentParser) -> None:
    """--grad-accumulation, --precision, --early-stop, --patience (see docs/training.md)."""
    group = parser.add_argument_group("trainer (also under torchrun: docs/training.md)")
    group.add_argument("--grad-accumulation", type=int, default=1, metavar="K",
                       help="split each step's global batch into K micro-batches (same result, less memory)")
    group.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                       help="auto (default): bf16 autocast on CUDA, fp32 elsewhere")
    group.add_argument("--early-stop", default="", metavar="METRIC",
                       help="stop when this validation metric stops improving, e.g. valid_loss "
                       "(lower is better) or valid_accuracy:max; needs --patience")
    group.add_argument("--patience", type=int, default=0, metavar="N",
                       help="validations without improvement before an early stop (0: never)")


def add_run_folder_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    """--run-dir, --resume, --device, --precision for the families trained by --run-dir (CycleGAN, UMT),
    which take no gradient accumulation; `default` names the run folder when --run-dir is not given."""
    parser.add_argument("--run-dir", type=Path, help="resumable run folder: run.pt, train_log.csv/.json, "
                        f"train_curves.png (default {default})")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="auto (default): bf16 autocast on CUDA, fp32 elsewhere")


def trainer_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The options of add_trainer_arguments as option-dataclass fields; UserError when inconsistent."""
    if args.grad_accumulation < 1 or args.patience < 0:
        raise UserError("--grad-accumulation must be >= 1 and --patience >= 0")
    if args.patience and not args.early_stop.startswith("valid_"):
        raise UserError("--patience needs --early-stop valid_<metric> (e.g. valid_loss)")
    return {"accumulation": args.grad_accumulation, "precision": args.precision,
            "early_stop": args.early_stop, "patience": args.patience}


def start_training_job(device: str):
    """This process's Job (torchrun's rank, or one process); UserError for a device this host lacks."""
    from musebridge.models.training import start_job

    try:
        return start_job(device)
    except ValueError as error:
        raise UserError(str(error)) from error


# -- train vae --------------------------------------------------------------------------------------
def register_vae(models: argparse._SubParsersAction) -> None:
    from musebridge.models.musicvae.options import TrainOptions

    defaults = TrainOptions()
    parser = models.add_parser(
        "vae",
        help="MusicVAE on melody windows (2-bar flat or 4-bar hierarchical)",
        description="Train a MusicVAE on melody-token windows of the cached dataset. Writes run.pt "
        "(resumable), train_log.csv and train_curves.png into --out-dir, then the shipped checkpoint "
        "(--export) and its model card (.yaml beside it). Measure the card's metrics with "
        "`musebridge eval vae --checkpoint X.pt --update-card`.",
    )
    parser.add_argument("--preset", default="mel_2bar_cpu",
                        help="model shape: mel_2bar_cpu (default), hier_mel_4bar_cpu, mel_2bar_paper")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a MusicVAEConfig field, e.g. --set z_size=64 (repeatable)")
    add_genre_options(parser, "genre", " ".join(DEFAULT_VAE_GENRES), "train on")
    add_dataset_option(parser, "dataset .npz (default <cache>/dataset.npz)")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    parser.add_argument("--valid-every", type=int, default=defaults.valid_every)
    parser.add_argument("--log-every", type=int, default=defaults.log_every)
    parser.add_argument("--threads", type=int, default=defaults.threads,
                        help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("--out-dir", "--run-dir", dest="out_dir", type=Path, default=None,
                        help="run folder (default runs/vae-<preset>)")
    parser.add_argument("--resume", action="store_true", help="continue from <out-dir>/run.pt")
    parser.add_argument("--init-from", type=Path, metavar="CHECKPOINT",
                        help="fine-tune a MusicVAE .pt (same preset): its weights, schedules from its step "
                        "count; --steps counts from 0, so give more steps than it has")
    parser.add_argument("--balance", type=float, default=1.0, metavar="POWER",
                        help="genre shares of the drawn windows ~ count**POWER: 1 as found (default), "
                        "0.5 square-root, 0 equal")
    parser.add_argument("--export", type=Path, help="shipped checkpoint path (default <out-dir>/musicvae.pt)")
    parser.add_argument("--attribute-windows", type=int, default=8192,
                        help="training windows used for the attribute vectors")
    parser.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help="no progress bar")
    add_trainer_arguments(parser)
    parser.set_defaults(handler=run_train_vae)


def load_vae_windows(dataset: Path | None, genres: list[str], bars: int, split: str):
    """Melody windows (EncodedWindows) of one split; UserError when the dataset is missing."""
    from musebridge.models.data import TuneDataset, melody_windows

    try:
        data = TuneDataset.load(dataset)
        windows = melody_windows(data, bars=bars, split=split, genres=genres)
    except ValueError as error:
        raise UserError(str(error)) from error
    if len(windows) == 0:
        raise UserError(f"no {bars}-bar melody windows of genre(s) {', '.join(genres)} in the {split} split")
    return data, windows


def _fine_tune_source(path: Path, config) -> dict:
    """The checkpoint dict to fine-tune from; UserError when unreadable or of another shape."""
    from musebridge.models.common.checkpoint_io import read_checkpoint

    try:
        saved = read_checkpoint(path, "cpu", "MusicVAE")
    except ValueError as error:
        raise UserError(str(error)) from error
    if not isinstance(saved, dict) or dict(saved.get("config") or {}) != config.to_dict():
        raise UserError(f"{path}: another model shape than --preset/--set give; use its preset")
    return saved


def _note_sources_in_card(card: Path, training: dict) -> None:
    """Add how the genres were weighted and what was fine-tuned to the card write_card made."""
    import yaml

    document = yaml.safe_load(card.read_text())
    document["data"]["balance"] = training["balance"]
    document["fine_tuned_from"] = training["fine_tuned_from"]
    card.write_text(yaml.safe_dump(document, sort_keys=False, width=100))


def run_train_vae(args: argparse.Namespace) -> int:
    import numpy as np

    from musebridge.models.data.balance import balanced_rows, genre_shares
    from musebridge.models.musicvae.eval import compute_attribute_vectors
    from musebridge.models.musicvae.model import PRESETS, MusicVAEConfig
    from musebridge.models.musicvae.train import TrainOptions, export_model, train_vae, write_card
    from musebridge.models.training import end_job

    if args.preset not in PRESETS:
        raise UserError(f"unknown preset {args.preset!r} (choose from {', '.join(PRESETS)})")
    try:
        config = MusicVAEConfig.from_dict({**PRESETS[args.preset].to_dict(), **parse_overrides(args.set)})
    except (TypeError, ValueError) as error:
        raise UserError(f"bad --set: {error}") from error
    for name in ("steps", "batch_size", "checkpoint_every", "valid_every", "log_every"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1")
    genres = sorted(args.genre or DEFAULT_VAE_GENRES)
    out_dir = args.out_dir or Path("runs") / f"vae-{args.preset}"
    export = args.export or out_dir / "musicvae.pt"
    options = TrainOptions(
        steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed,
        checkpoint_every=args.checkpoint_every, valid_every=args.valid_every, log_every=args.log_every,
        threads=args.threads, device=args.device, **trainer_fields(args),
    )
    data, train = load_vae_windows(args.dataset, genres, config.bars, "train")
    _, valid = load_vae_windows(args.dataset, genres, config.bars, "valid")
    try:
        rows = balanced_rows(train.genre, args.balance, options.seed)
        shares = {train.genres[g]: round(v, 4) for g, v in genre_shares(train.genre, args.balance).items()}
    except ValueError as error:
        raise UserError(str(error)) from error
    init_from = _fine_tune_source(args.init_from, config) if args.init_from else None
    job = start_training_job(args.device)
    if job.is_main:
        print(f"train vae: {len(train)} train / {len(valid)} valid windows of {config.bars} bars "
              f"({', '.join(genres)}; drawn shares {shares}); run folder {out_dir}", file=sys.stderr)
    try:
        result = train_vae(config, options, train.tokens[rows], valid.tokens, out_dir, resume=args.resume,
                           progress=not args.quiet, init_from=init_from, job=job)
    except ValueError as error:
        raise UserError(str(error)) from error
    finally:
        end_job(job)
    if not job.is_main:  # rank 0 alone writes the checkpoint and its card
        return 0
    rng = np.random.default_rng(options.seed)
    pick = rng.choice(len(train), size=min(args.attribute_windows, len(train)), replace=False)
    result.model.attribute_vectors = compute_attribute_vectors(result.model, train.tokens[np.sort(pick)])
    last = result.history[-1] if result.history else {}
    training = {
        "steps": result.step,
        "options": asdict(options),
        "preset": args.preset,
        # a resumed run equals an uninterrupted one (per-step seeding), so the card gives the plain command
        "command": command_line(drop=("--resume",)),
        "resumed": bool(args.resume),
        "processes": job.world_size,  # torchrun ranks; the global batch is --batch-size on any count
        "final": {k: round(float(v), 5) for k, v in last.items()},
        "windows": {"train": len(train), "valid": len(valid)},
        "balance": {"power": args.balance, "shares": shares},
        "fine_tuned_from": args.init_from.name if args.init_from else None,
        "dataset": portable_path(str(data.path)) if data.path else "",
    }
    path = export_model(result.model, export, genres=genres, training=training)
    card = write_card(path, config=config.to_dict(), genres=genres, training=training,
                      dataset_info=dict(data.info))
    _note_sources_in_card(card, training)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and {card}")
    return 0
