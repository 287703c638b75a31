"""`musebridge transfer in.mid --to celtic -o out.mid`: genre transfer of a whole MIDI file, offline.

The chosen tracks (`--track`, default every pitched track, merged) are cut into phrases that follow
the file's meter changes; the CycleGAN (or, with `--model umt`, the universal translator, from any genre
into any of its genres) re-voices each in the target genre (velocities from the input
notes), and the result replaces the chosen notes: each output note on the track, channel and program
of the input note nearest to it. Every other track (drums included), the tempo map and the meters are
kept as they were (musebridge.midi_files). The output is written to a temporary file and renamed, so
a failure leaves nothing.

Also home of the `train transfer` and `eval transfer` sub-subcommands (registered through the
TRAINERS / EVALUATORS tables of commands/train.py and commands/eval.py); torch loads in the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from musebridge.commands.arguments import add_dataset_option, guidance
from musebridge.errors import UserError
from musebridge.midi_files import (
    describe_selection,
    describe_timing,
    open_midi,
    phrases_of,
    select_parts,
    write_back,
)

# models/cyclegan/model.py CONFIGS, kept here so --help needs no torch
CONFIG_NAMES = ("brunner2018", "cpu_small")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "transfer",
        help="re-voice a MIDI file in another genre (CycleGAN, Brunner 2018; --model umt: Mor 2019)",
        description="Cut the chosen tracks into phrases (following the file's meter changes), transfer "
        "each toward --to with the CycleGAN (or the universal translator, --model umt), and write the "
        "file back with those notes replaced: other tracks, drums, tempo map and meters are kept as "
        "they were.",
    )
    parser.add_argument("input", type=Path, metavar="in.mid")
    add_track_option(parser)
    parser.add_argument("--to", required=True, metavar="GENRE", help="target genre, e.g. celtic")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="out.mid")
    parser.add_argument(
        "--model", default="cyclegan", choices=("cyclegan", "umt"), help="transfer model (default cyclegan)"
    )
    parser.add_argument(
        "--checkpoint", help="cyclegan .pt (default: the shipped ones, several joined by ','), or umt .pt"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, cuda")
    parser.add_argument(
        "--guidance",
        type=guidance,
        default=0.0,
        metavar="G",
        help="umt only: how much of your phrase to keep, 0..20 (default 0: the model re-voices freely). "
        "Higher keeps more of the notes you played and less of the target genre's character: about 5 "
        "keeps half of a phrase's onsets on average; at 20 every note you played sounds (repeated "
        "notes of one pitch may join into one held note) with the genre's notes around them "
        "(docs/models.md, input guidance)",
    )
    parser.set_defaults(handler=run_transfer)


def add_track_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--track",
        action="append",
        metavar="N|NAME",
        help="a track the model acts on, by number (1 = the first in the file) or name; repeatable "
        "(default: every track with pitched notes, merged)",
    )


def run_transfer(args: argparse.Namespace) -> int:
    from musebridge.commands.arguments import refuse_overwriting_an_input
    from musebridge.core.model_protocol import ModelRequest
    from musebridge.core.music import Phrase

    refuse_overwriting_an_input(args.output, args.input)
    score = open_midi(args.input)
    parts = select_parts(score, args.track)
    runs = phrases_of(score, parts)
    from musebridge.registry import resolve_device

    options: dict = {"checkpoint": args.checkpoint or ""}
    if args.model == "umt":
        from musebridge.models.umt.phrase_model import create_umt_model as create_transfer_model

        options["guidance"] = args.guidance
    else:
        from musebridge.models.cyclegan.phrase_model import create_transfer_model

        if args.guidance:
            raise UserError("--guidance is an option of --model umt (the CycleGAN has no decoder to guide)")
    model = create_transfer_model(resolve_device(args.device), options)
    genre = args.to.strip().lower()
    if genre not in model.genres:
        raise UserError(f"no model transfers to genre {genre!r} (known: {', '.join(model.genres)})")
    notes_in, output, silenced = 0, [], []
    for segment, phrase in runs:
        notes_in += len(phrase.notes)
        try:
            result = model.generate(
                ModelRequest(mode="transfer", phrase=phrase, bars=phrase.bars, genre=genre)
            )
        except ValueError as error:
            raise UserError(f"{args.input}: {error}") from error
        cut = Phrase(result.notes, result.bars, result.meter).clipped().notes
        kept = [n.shifted(segment.start) for n in cut if n.start < segment.length - 1e-9]
        if phrase.notes and not kept:
            silenced.append(segment)
        output += kept
    written = write_back(score, parts, output, args.output)
    if silenced:  # the file is written, but the user must know a played passage came back silent
        where = ", ".join(f"beat {segment.start:g}" for segment in silenced[:5])
        more = f" and {len(silenced) - 5} more" if len(silenced) > 5 else ""
        print(f"warning: {len(silenced)} of {len(runs)} phrase(s) with notes came back without any "
              f"({model.name} into {genre}): from {where}{more}", file=sys.stderr)
    bars = sum(segment.bars for segment, _phrase in runs)
    print(describe_selection(score, parts))
    print(
        f"wrote {args.output}: {bars} bars ({describe_timing(score)}), {notes_in} notes in, "
        f"{written} notes out ({genre}); other tracks, tempo map and meters as they were"
    )
    return 0


# ---------------------------------------------------------------- train transfer / eval transfer


def register_train(models: argparse._SubParsersAction) -> None:
    """`musebridge train transfer`: genre classifier, then the CycleGAN of a genre pair."""
    parser = models.add_parser(
        "transfer",
        help="CycleGAN genre transfer for a pair of genres (dataset genres or two MIDI folders)",
        description="Train the evaluation classifier, then the CycleGAN, on 4-bar 4/4 phrases of two "
        "genres: --pair A B from the built dataset, or --a DIR_A --b DIR_B (your own MIDI folders). "
        "Writes cyclegan_<a>_<b>.pt and genre_classifier_<a>_<b>.pt with their .yaml model cards.",
    )
    parser.add_argument("--pair", nargs=2, metavar=("A", "B"), help="two genres of the built dataset")
    parser.add_argument("--a", type=Path, metavar="DIR_A", help="a folder of .mid files for genre A")
    parser.add_argument("--b", type=Path, metavar="DIR_B", help="a folder of .mid files for genre B")
    parser.add_argument(
        "--names", nargs=2, metavar=("A", "B"), help="genre names for --a/--b (default: folders)"
    )
    add_dataset_option(parser, "dataset .npz (default: the built cache)")
    parser.add_argument("--config", default="cpu_small", choices=CONFIG_NAMES, help="CycleGAN size")
    parser.add_argument(
        "--kind",
        choices=("base", "partial", "full"),
        help="the paper's models: no extra discriminators / mixed set A u B / A u B u other genres",
    )
    parser.add_argument(
        "--mixed-genres", nargs="+", metavar="GENRE", help="--kind full: the other genres (default: all)"
    )
    parser.add_argument("--sigma-d", type=float, help="std of the half-normal noise on D inputs")
    parser.add_argument(
        "--input-skip", type=float, help="not in the paper: learnable input skip starting at this weight"
    )
    parser.add_argument(
        "--ema",
        type=float,
        default=0.0,
        metavar="DECAY",
        help="not in the paper: keep a moving average of the generator weights (e.g. 0.995; 0: off)",
    )
    parser.add_argument("--steps", type=int, default=2000, help="CycleGAN training steps (batches)")
    parser.add_argument("--batch-size", type=int, help="override the config's batch size")
    parser.add_argument("--checkpoint-every", type=int, default=250, help="save the CycleGAN every N steps")
    parser.add_argument(
        "--keep-checkpoints", action="store_true", help="also keep every saved step as .stepNNNNN.pt"
    )
    parser.add_argument("--classifier-epochs", type=int, default=8)
    parser.add_argument("--skip-classifier", action="store_true", help="keep the existing classifier file")
    parser.add_argument("--max-phrases", type=int, default=0, help="cap train phrases per genre (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("-o", "--output-dir", type=Path, default=Path("models/checkpoints"))
    parser.add_argument("--log-every", type=int, default=50, help="log the mean losses every N steps")
    from musebridge.commands.train import add_run_folder_arguments

    add_run_folder_arguments(parser, "runs/transfer-<a>_<b>")
    parser.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from musebridge.models.cyclegan.train import run

    return run(args)


def register_eval(models: argparse._SubParsersAction) -> None:
    """`musebridge eval transfer`: classifier accuracy, S_A->B, S_B->A, S_tot and content kept."""
    parser = models.add_parser(
        "transfer",
        help="CycleGAN: classifier accuracy, transfer strength S (Brunner et al. 2018), content kept",
        description="Transfer the held-out test phrases both ways, classify originals, transfers and "
        "cycles with the pair's genre classifier, and print accuracy, S_A->B, S_B->A, S_tot and the "
        "fraction of input onsets kept.",
    )
    parser.add_argument("checkpoint", type=Path, help="a cyclegan_<a>_<b>.pt checkpoint")
    parser.add_argument(
        "--classifier", type=Path, help="classifier .pt (default: genre_classifier_<a>_<b>.pt beside)"
    )
    add_dataset_option(parser, "dataset .npz (default: the built cache)")
    parser.add_argument(
        "--a", type=Path, metavar="DIR_A", help="MIDI folder of genre A (instead of the dataset)"
    )
    parser.add_argument("--b", type=Path, metavar="DIR_B", help="MIDI folder of genre B")
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument("--max-phrases", type=int, default=0, help="cap phrases per genre (0: all)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--update-card", action="store_true", help="write the figures into the model card")
    parser.add_argument("--seed", type=int, default=0, help="which phrases --max-phrases keeps")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.set_defaults(handler=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from musebridge.models.cyclegan.eval import run

    return run(args)
