"""Training of the universal translator (`musebridge train umt`; options in bridge/commands/umt.py).

    musebridge train umt --genres celtic folk chorale renaissance --config cpu_small --steps 6000
    musebridge train umt --add-genre jazz=~/midi/jazz --checkpoint models/checkpoints/umt.pt
    torchrun --nproc-per-node 2 -m musebridge train umt ...   (DDP; see docs/training.md)

It trains through the shared trainer (models/training); the step, its losses (reconstruction, domain
confusion, the argmax bottleneck's diversity term) and the family are in family.py. This file holds the
data set-up, validation (reconstruction loss, the greedy threshold), the checkpoints and the card.

`--add-genre NAME=DIR` trains only the new genre's decoder: the encoder is frozen (eval mode, no
gradient) and no other parameter is in the optimiser, so the other decoders stay bit-identical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from musebridge.models.umt.family import UMTResult, UMTTrainer, diversity_loss, train_umt
from musebridge.models.umt.model import UniversalTranslator

__all__ = ["UMTResult", "UMTTrainer", "choose_threshold", "diversity_loss", "reconstruction_loss", "run",
           "train_umt"]


@torch.no_grad()
def reconstruction_loss(
    model: UniversalTranslator, rolls_by_genre: Mapping[str, np.ndarray], batch_size: int = 128
) -> float:
    """Mean teacher-forced BCE per cell of clean rolls through their own decoder (validation)."""
    model.eval()
    total, count = 0.0, 0
    for genre, rolls in rolls_by_genre.items():
        for i in range(0, len(rolls), batch_size):
            batch = torch.from_numpy(rolls[i : i + batch_size].astype(np.float32))
            logits = model.decoder(genre)(batch, model.encode(batch))
            total += float(F.binary_cross_entropy_with_logits(logits, batch, reduction="sum"))
            count += batch.numel()
    return total / max(1, count)


def choose_threshold(
    model: UniversalTranslator,
    rolls_by_genre: Mapping[str, np.ndarray],
    candidates: Sequence[float] = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5),
    per_genre: int = 64,
) -> tuple[float, dict[float, float]]:
    """The greedy-generation threshold whose reconstructions (each phrase through its own decoder,
    generated, not teacher-forced) best match the clean phrases: highest F1 of active cells, averaged
    over genres. An autoencoder criterion on valid: the judges never see it. Returns (threshold, F1s)."""
    from musebridge.models.umt.model import generate

    model.eval()
    latents = {
        g: model.encode(torch.from_numpy(r[:per_genre].astype(np.float32))).detach()
        for g, r in rolls_by_genre.items()
        if len(r)
    }
    scores = {}
    for threshold in candidates:
        f1 = []
        for genre, latent in latents.items():
            truth = rolls_by_genre[genre][:per_genre].astype(bool)
            made = generate(model.decoder(genre), latent, threshold).numpy()
            f1.append(2.0 * float((made & truth).sum()) / max(1.0, float(made.sum() + truth.sum())))
        scores[threshold] = float(np.mean(f1))
    return max(scores, key=lambda t: scores[t]), scores


# ---------------------------------------------------------------- `musebridge train umt`

DEFAULT_GENRES = ("celtic", "folk", "chorale", "renaissance")


def _parse_add_genre(text: str) -> tuple[str, object]:
    from pathlib import Path

    from musebridge.errors import UserError

    name, sep, folder = text.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise UserError(f"--add-genre wants NAME=DIR, got {text!r}")
    return name.strip().lower(), Path(folder.strip()).expanduser()


def run(args) -> int:
    """Handler of `musebridge train umt`: the full model, or (--add-genre) one new decoder."""
    import sys
    from pathlib import Path

    from musebridge.commands.train import command_line, start_training_job
    from musebridge.errors import UserError
    from musebridge.models.cyclegan.train import write_card
    from musebridge.models.training import end_job
    from musebridge.models.training.records import validation_warning
    from musebridge.models.umt.data import balanced, folder_rolls, genre_rolls
    from musebridge.models.umt.model import UniversalTranslator, get_config, load_umt, save_umt

    torch.set_num_threads(max(1, args.threads))
    if getattr(args, "threshold_only", False):
        return _threshold_only(args)
    if args.steps < 1 or args.checkpoint_every < 1 or args.log_every < 1:
        raise UserError("--steps, --checkpoint-every and --log-every must be >= 1")
    rng = np.random.default_rng(args.seed)
    command = command_line()
    try:
        if args.add_genre:
            if args.checkpoint is None:
                raise UserError("--add-genre needs --checkpoint (the trained model whose encoder is kept)")
            model, extra = load_umt(args.checkpoint)
            name, folder = _parse_add_genre(args.add_genre)
            sets = {name: folder_rolls(name, folder)}
            model.add_genre(name)
            new_genres: tuple[str, ...] = (name,)
            history = list(extra.get("history", [])) + [{"add_genre": name, "command": command}]
        else:
            overrides: dict = {"genres": tuple(args.genres)}
            if args.bottleneck:
                overrides["bottleneck"] = args.bottleneck
            if args.no_augment:
                overrides["augment"] = False
            if args.confusion_weight is not None:
                overrides["confusion_weight"] = args.confusion_weight
            config = get_config(args.config, **overrides)
            sets = genre_rolls(args.genres, args.dataset)
            torch.manual_seed(args.seed)  # the init follows the seed (DDP gives every rank rank 0's)
            model = UniversalTranslator(config)
            new_genres = ()
            history = [{"command": command}]
    except ValueError as error:
        raise UserError(str(error)) from error
    default_out = Path(f"umt_{new_genres[0]}.pt") if new_genres else Path("models/checkpoints/umt.pt")
    out: Path = (args.output or default_out).expanduser()
    job = start_training_job(args.device)  # every rank has read the same data and model
    say = print if job.is_main else (lambda *_a, **_k: None)
    if job.is_main:
        out.parent.mkdir(parents=True, exist_ok=True)
    train = {g: balanced(s["train"], args.max_phrases, rng) for g, s in sets.items()}
    valid = {g: s["valid"][:256] for g, s in sets.items() if len(s["valid"])}
    counts = {g: {k: int(len(v)) for k, v in s.items()} for g, s in sets.items()}
    say("phrases per genre and split: " + ", ".join(f"{g} {c}" for g, c in counts.items()))
    warning = validation_warning({g: c["valid"] for g, c in counts.items()}, "phrases")
    if warning:
        say(warning)

    def save(step: int, loss: float, best: bool) -> None:  # rank 0, after each run.pt and validation
        print(f"step {step}: valid reconstruction {loss:.4f} (BCE per cell)")
        extra = {"steps": step, "seed": args.seed, "history": history, "valid_reconstruction": loss}
        save_umt(model, out.with_name(out.stem + ".last.pt"), extra)
        if best:  # the best on valid is the one kept
            save_umt(model, out, extra)

    default_run = f"umt-{new_genres[0]}" if new_genres else "umt"
    run_dir = (getattr(args, "run_dir", None) or Path("runs") / default_run).expanduser()
    try:
        result = train_umt(
            model, train, args.steps, args.seed, new_genres=new_genres, genres=list(new_genres) or None,
            validation=(lambda m: reconstruction_loss(m, valid) if valid else float("nan")),
            checkpoint=save, checkpoint_every=args.checkpoint_every, log=say, log_every=args.log_every,
            out_dir=run_dir, resume=args.resume, progress=sys.stderr.isatty(), device=args.device,
            precision=args.precision, job=job,
        )  # fmt: skip
    except ValueError as error:
        raise UserError(str(error)) from error
    finally:
        end_job(job)
    if not job.is_main:  # rank 0 alone writes the checkpoint and its card
        return 0
    best = result.best
    out.with_name(out.stem + ".last.pt").unlink(missing_ok=True)
    model, extra = load_umt(out)  # the step chosen on valid
    threshold, f1_by_threshold = choose_threshold(model, valid) if valid else (0.5, {})
    model.threshold = threshold
    save_umt(model, out, extra)
    print(f"threshold {threshold} (valid reconstruction F1 by threshold: {f1_by_threshold})")
    write_card(
        out.with_suffix(".yaml"),
        {
            "model": "universal music translation (Mor et al. 2019) on piano rolls, "
            f"config {model.config.name}, bottleneck {model.config.bottleneck}",
            "genres": list(model.genres),
            "data": {
                "source": f"MIDI folder ({new_genres[0]})" if new_genres else "built dataset (genres.yaml)",
                "phrases": "4 bars x 16 steps x 84 pitches (MIDI 24..107), binary, tracks merged; 4/4 only",
                "phrases_per_split": counts,
                "train_phrases_used_per_genre": {g: int(len(r)) for g, r in train.items()},
                "split": "by tune, sha1 of the source id (80/10/10)",
            },
            "config": model.config.to_dict(),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "seed": args.seed,
            "steps": result.steps,
            "command": command,
            "history": history,
            "selection": f"step {best['step']} of {result.steps}: lowest valid reconstruction "
            f"({best['valid_reconstruction']:.4f} BCE per cell)",
            "threshold": threshold,
            "threshold_selection": "highest F1 of generated (greedy) reconstructions on valid: "
            + ", ".join(f"{k}: {v:.3f}" for k, v in f1_by_threshold.items()),
            "final_losses": result.losses,
            "train_seconds": round(result.seconds),
            "metrics": "run `musebridge eval umt --update-card`",
        },
    )
    print(f"wrote {out} and {out.with_suffix('.yaml')}")
    return 0


def _threshold_only(args) -> int:
    """`train umt --threshold-only --checkpoint X`: choose the greedy threshold of a trained model on
    valid (choose_threshold), store it in the checkpoint and its card; no training step."""
    import yaml

    from musebridge.commands.train import command_line
    from musebridge.errors import UserError
    from musebridge.models.cyclegan.train import write_card
    from musebridge.models.umt.data import genre_rolls
    from musebridge.models.umt.model import load_umt, save_umt

    if args.checkpoint is None or not args.checkpoint.is_file():
        raise UserError("--threshold-only needs --checkpoint, a trained UMT checkpoint")
    try:
        model, extra = load_umt(args.checkpoint)
        sets = genre_rolls(model.genres, args.dataset, splits=("valid",))
    except ValueError as error:
        raise UserError(str(error)) from error
    valid = {g: s["valid"][:256] for g, s in sets.items() if len(s["valid"])}
    threshold, scores = choose_threshold(model, valid)
    model.threshold = threshold
    save_umt(model, args.checkpoint, extra)
    card_path = args.checkpoint.with_suffix(".yaml")
    card = yaml.safe_load(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    card["threshold"] = threshold
    card["threshold_selection"] = (
        "highest F1 of generated (greedy) reconstructions on valid: "
        + ", ".join(f"{k}: {v:.3f}" for k, v in scores.items())
        + f" ({command_line()})"
    )
    write_card(card_path, card)
    print(f"threshold {threshold} (valid reconstruction F1 by threshold: {scores})")
    return 0
