"""`musebridge continue in.mid --bars 4 -o out.mid`: call and response offline (WaveNet or C-RNN-GAN).

The chosen tracks (`--track`, default every pitched track, merged) are the call: its last run of one
meter, from that run's first bar line (bars follow the file's meter changes). The output is the input
file, every track, tempo map and meter kept, with the answer added from the bar line after the call,
(the file's first bar line at or after the end of the call's last sounding note),
on the track, channel and program of the call's notes nearest to it; or, with --answer-only, a new
file of the answer alone (the call's tempo at its end, its meter, channel and program).
Also registers `musebridge train continue` and
`musebridge eval continue` (their work lives in musebridge.models.continuation.train / .eval).
torch is imported only inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from musebridge.commands import arguments
from musebridge.commands.arguments import add_dataset_option, add_genre_options, chosen_seed
from musebridge.commands.transfer import add_track_option
from musebridge.errors import UserError
from musebridge.midi_files import (
    describe_selection,
    describe_timing,
    open_midi,
    phrases_of,
    select_parts,
    write_back,
    write_phrases_midi,
)

MODELS = ("wavenet", "crnngan")
MAX_BARS = 64


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "continue",
        help="answer a played phrase (call and response) with WaveNet or C-RNN-GAN",
        description="Read a MIDI file as the call, let a continuation model answer it with --bars bars, "
        "and write the call followed by the answer (or the answer alone) into a MIDI file.",
    )
    parser.add_argument("input", type=Path, metavar="in.mid", help="the call")
    add_track_option(parser)
    parser.add_argument("--bars", type=int, default=4, help=f"bars of answer, 1..{MAX_BARS} (default 4)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="out.mid")
    parser.add_argument(
        "--model", choices=MODELS, default="wavenet", help="continuation model (default wavenet)"
    )
    parser.add_argument("--checkpoint", type=Path, help="a .pt (default: the shipped one of --model)")
    parser.add_argument(
        "--temperature", type=arguments.temperature, default=1.0,
        help="sampling temperature 0..10 (wavenet: 0 = argmax; default 1)",
    )
    parser.add_argument("--genre", default="", help="genre to condition on, if the model knows genres")
    arguments.add_seed_option(parser)
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, cuda")
    parser.add_argument("--answer-only", action="store_true", help="write only the answer")
    parser.set_defaults(handler=run_continue)


def run_continue(args: argparse.Namespace) -> int:
    if not 1 <= args.bars <= MAX_BARS:
        raise UserError(f"--bars must be 1..{MAX_BARS}, got {args.bars}")
    arguments.refuse_overwriting_an_input(args.output, args.input)
    score = open_midi(args.input)
    parts = select_parts(score, args.track)
    segment, call = phrases_of(score, parts)[-1]
    from musebridge.core.model_protocol import ModelRequest
    from musebridge.models.continuation.phrase_model import DEFAULT_CHECKPOINTS, ContinuePhraseModel
    from musebridge.registry import require_checkpoint, resolve_device

    path = require_checkpoint(args.checkpoint or DEFAULT_CHECKPOINTS[args.model], model=args.model)
    try:
        model = ContinuePhraseModel.from_checkpoint(path, resolve_device(args.device))
    except ValueError as error:
        raise UserError(str(error)) from error
    if args.genre and not model.conditions_on_genre:  # said, not refused: the answer is still made
        trained = f" (trained on {', '.join(model.genres)})" if model.genres else ""
        print(f"warning: the {model.kind} checkpoint is not conditioned on genre{trained}: "
              f"--genre {args.genre} changes nothing", file=sys.stderr)
    elif args.genre and args.genre not in model.genres:
        known = ", ".join(model.genres)
        raise UserError(f"the {model.kind} checkpoint knows no genre {args.genre!r} (known: {known})")
    request = ModelRequest(
        "continue", call, args.bars, genre=args.genre, temperature=args.temperature, seed=chosen_seed(args)
    )
    try:
        answer = model.generate(request)
    except ValueError as error:
        raise UserError(f"{args.input}: {error}") from error
    # the file's first bar line at or after the end of every note of the call (phrases_of's last segment
    # ends there, even when a meter change cuts its last bar short)
    answer_start = segment.start + segment.length
    placed = [n.shifted(answer_start) for n in answer.clipped().notes]
    if not placed:  # the file is still written (the call as it was), but the user must know
        print(f"warning: the {model.kind} answer has no notes ({args.bars} bars of rests); another --seed "
              "or a higher --temperature gives another answer", file=sys.stderr)
    print(describe_selection(score, parts))
    if args.answer_only:
        source = parts[0]
        tempo = score.bpm_at(round(answer_start * score.ticks_per_beat))
        channel = source.channel if source.channel is not None else 0
        write_phrases_midi([answer], args.output, tempo, channel=channel, program=source.program)
        print(f"wrote {args.output}: {model.kind} answer alone ({args.bars} bars, {len(answer.notes)} notes, "
              f"seed {args.seed})")
        return 0
    written = write_back(score, parts, placed, args.output, replace=False)
    print(
        f"wrote {args.output}: the whole input ({describe_timing(score)}) + {model.kind} answer ({args.bars} "
        f"bars of {call.meter}, {written} notes) from beat "
        f"{answer_start:g}; the call: its last {call.bars} bars; seed {args.seed}"
    )
    return 0


# ---- musebridge train continue / eval continue ---------------------------------------------------------


def register_train(models: argparse._SubParsersAction) -> None:
    """Adds `musebridge train continue` to the subparsers of `musebridge train`."""
    from musebridge.commands.train import add_trainer_arguments

    parser = models.add_parser(
        "continue",
        help="WaveNet or C-RNN-GAN continuation model on the cached dataset",
        description="Train a continuation model. Writes run.pt (resumable), train_log.csv and "
        "train_curves.png into --out-dir; --export writes the shipped .pt and its .yaml model card.",
    )
    parser.add_argument("--model", choices=MODELS, required=True, help="which continuation model to train")
    add_dataset_option(parser, "dataset .npz (default: the built cache)", dest="data")
    add_genre_options(parser, "genres", "all", "train on")
    parser.add_argument("--synthetic", action="store_true", help="toy scales/arpeggios instead of a dataset")
    parser.add_argument(
        "--out-dir", "--run-dir", dest="out_dir", required=True,
        help="run folder: run.pt, train_log.csv, train_curves.png",
    )
    parser.add_argument("--export", default=None, help="write the shipped checkpoint here (+ .yaml card)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out-dir")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--window-bars", type=int, default=8, help="bars per training window (4/4)")
    parser.add_argument(
        "--size", choices=("cpu", "paper"), default="cpu", help="crnngan: 2x128 or the paper's 2x350"
    )
    parser.add_argument("--channels", type=int, default=64, help="wavenet residual channels")
    parser.add_argument("--blocks", type=int, default=2, help="wavenet blocks of dilations 1..32")
    parser.add_argument("--genre-conditioning", action="store_true", help="wavenet: condition on the genre")
    parser.add_argument(
        "--sequence-length", type=int, default=32, help="crnngan: steps per training sequence"
    )
    parser.add_argument("--pretrain-steps", type=int, default=1000, help="crnngan: MSE pretraining steps")
    parser.add_argument("--quiet", "--no-progress", dest="no_progress", action="store_true",
                        help="no progress bar")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    add_trainer_arguments(parser)
    parser.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    for name in ("steps", "batch_size", "window_bars", "sequence_length", "channels", "blocks"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1")
    from musebridge.models.continuation.train import run

    return run(args)


def register_eval(models: argparse._SubParsersAction) -> None:
    """Adds `musebridge eval continue` to the subparsers of `musebridge eval`."""
    parser = models.add_parser(
        "continue",
        help="continuation models: C-RNN-GAN statistics, NLL/accuracy, continuation fit",
        description="On held-out tunes: polyphony, scale consistency, repetitions and tone span of the real "
        "answers, of each model's free generations and of its continuations of the real calls; WaveNet "
        "NLL/accuracy per step; key and range fit of answers to calls. Prints a table and writes JSON.",
    )
    parser.add_argument("--checkpoint", action="append", type=Path, help="a .pt (repeat; default: shipped)")
    add_dataset_option(parser, "dataset .npz (default: the built cache)", dest="data")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"))
    add_genre_options(parser, "genres", "the model's", "evaluate on")
    parser.add_argument(
        "--ood-genres", nargs="*", default=None,
        help="held-out genres measured whole beside the split (default: every out-of-domain genre)",
    )
    parser.add_argument("--no-ood", action="store_true", help="skip the out-of-domain collections")
    parser.add_argument("--call-bars", type=int, default=4)
    parser.add_argument("--bars", type=int, default=4, help="answer bars")
    parser.add_argument("--windows", type=int, default=200, help="call+answer windows to use (spread evenly)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="the request's temperature knob (1.0 = the checkpoint's calibrated sampling)")
    parser.add_argument("--sampling-temperature", type=float, default=None, metavar="T",
                        help="wavenet: calibrated temperature to use instead of the checkpoint's")
    parser.add_argument("--top-p", type=float, default=None, metavar="P",
                        help="wavenet: nucleus (0 < P <= 1) to use instead of the checkpoint's")
    parser.add_argument("--copy-weight", type=float, default=None, metavar="W",
                        help="wavenet: weight (0 <= W < 1) of the bar cache (tokens 1, 2, 4 bars back) "
                        "instead of the checkpoint's")
    parser.add_argument("--copy-bars", type=int, nargs="+", default=None, metavar="N",
                        help="wavenet: the bar cache's lags in bars (default: the checkpoint's, else 1 2 4)")
    parser.add_argument("--store-sampling", action="store_true",
                        help="write --sampling-temperature / --top-p / --copy-weight into each WaveNet "
                        "checkpoint and card (choose them on --split valid)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--update-card", action="store_true", help="store the metrics in each model card")
    parser.add_argument(
        "--latency", action="store_true", help="only time 2-bar answers to a 4-bar call (p50/p99)"
    )
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.set_defaults(handler=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    if args.call_bars < 1 or not 1 <= args.bars <= MAX_BARS or args.windows < 1:
        raise UserError("--call-bars, --bars (<= 64) and --windows must be >= 1")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.copy_bars is not None and min(args.copy_bars) < 1:
        raise UserError("--copy-bars must be whole bars >= 1")
    if args.copy_weight is not None and not 0 <= args.copy_weight < 1:
        raise UserError(f"--copy-weight must be in [0, 1), got {args.copy_weight}")
    if args.sampling_temperature is not None and not args.sampling_temperature > 0:
        raise UserError(f"--sampling-temperature must be > 0, got {args.sampling_temperature}")
    from musebridge.models.continuation.eval import run

    return run(args)
