"""`musebridge interpolate A.mid B.mid --steps N [--bars 2|4] -o OUT.mid`: a MusicVAE morph, offline.

The output is a new file that plays A, then the N interpolated phrases, then B, one after another, each
`bars` bars long, at A's tempo where its clip starts, in A's meter (B is read in it, with a warning when
its own differs), on the channel and program of A's part with the most notes in its clip (said in the
output). A and B are read (every pitched track merged, or the --track ones) from the bar that
holds their first note; their velocities carry over into the morph.
Also home of the MusicVAE options and loader `sample` uses; the MIDI files are read and written by
musebridge.midi_files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from musebridge.commands import arguments
from musebridge.commands.arguments import chosen_seed
from musebridge.errors import UserError
from musebridge.midi_files import read_midi_clip, write_phrases_midi


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "interpolate",
        help="MusicVAE morph from A.mid to B.mid (A, the steps, B, one after another)",
        description="Encode A and B with MusicVAE, slerp in latent space, decode N steps between them "
        "in one batch, and write A, the steps and B into one MIDI file.",
    )
    parser.add_argument("clip_a", type=Path, metavar="A.mid")
    parser.add_argument("clip_b", type=Path, metavar="B.mid")
    parser.add_argument(
        "--track", action="append", metavar="N|NAME",
        help="the track of A and of B to read, by number (1 = the first in the file) or name; repeatable "
        "(default: every track with pitched notes, merged)",
    )
    parser.add_argument(
        "--track-b", action="append", metavar="N|NAME",
        help="B's track when it differs from A's (repeatable; default: the --track ones)",
    )
    parser.add_argument("--steps", type=int, default=5, help="phrases between A and B, 1..256 (default 5)")
    parser.add_argument("--bars", type=int, default=2, choices=(2, 4), help="bars per phrase (default 2)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.mid")
    add_model_options(parser)
    parser.add_argument("--temperature", type=arguments.temperature, default=0.0,
                        help="decoder temperature 0..10 (0 = argmax, the default)")
    parser.set_defaults(handler=run_interpolate)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, help="MusicVAE .pt (default: the shipped one for --bars)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    arguments.add_seed_option(parser)


def load_vae(args: argparse.Namespace):
    """The MusicVAEPhraseModel for --checkpoint or the shipped checkpoint of --bars."""
    from musebridge.models.musicvae.phrase_model import load_phrase_model, shipped_checkpoint
    from musebridge.registry import require_checkpoint, resolve_device

    path = args.checkpoint or shipped_checkpoint(args.bars)
    if args.checkpoint is None and not path.is_file() and shipped_checkpoint(2).is_file():
        print(
            f"note: no shipped {args.bars}-bar MusicVAE; using the 2-bar model window by window",
            file=sys.stderr,
        )
        path = shipped_checkpoint(2)
    path = require_checkpoint(path, model="musicvae")
    device = resolve_device(args.device)  # a device error is the user's, not the checkpoint's
    try:
        return load_phrase_model(path, device)
    except Exception as error:  # noqa: BLE001 - any load failure means an unusable file
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise UserError(f"{path}: not a usable MusicVAE checkpoint ({reason})") from error


def run_interpolate(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.steps > 256:
        raise UserError(f"--steps must be 1..256, got {args.steps}")
    arguments.refuse_overwriting_an_input(args.output, args.clip_a, args.clip_b)
    a = read_midi_clip(args.clip_a, args.bars, args.track)
    clip_a = a.phrase
    b = read_midi_clip(args.clip_b, args.bars, args.track_b or args.track, meter=clip_a.meter)  # A's meter
    if b.own_meter != clip_a.meter:
        print(
            f"warning: {args.clip_b}: meter {b.own_meter} differs from A's {clip_a.meter}; B is read as "
            f"{args.bars} bars of {clip_a.meter} ({args.bars * clip_a.meter.beats_per_bar:g} beats from its "
            f"first bar line, {len(b.phrase.notes)} notes)",
            file=sys.stderr,
        )
    clip_b = b.phrase
    print(f"A: {a.source}")
    print(f"B: {b.source.split('; written on ')[0]}")
    vae = load_vae(args)
    positions = [(i + 1) / (args.steps + 1) for i in range(args.steps)]
    try:
        morph = vae.interpolate_phrases(
            clip_a, clip_b, positions, args.bars, clip_a.meter, temperature=args.temperature,
            seed=chosen_seed(args),
        )
    except ValueError as error:  # e.g. a meter MusicVAE cannot count in sixteenth-note steps
        raise UserError(f"{args.clip_a}: {error}") from error
    write_phrases_midi([clip_a, *morph, clip_b], args.output, a.tempo, channel=a.channel, program=a.program)
    sampled = f", temperature {args.temperature:g}, seed {args.seed}" if args.temperature else ""
    steps = f"{args.steps} step{'s' if args.steps > 1 else ''}"
    print(f"wrote {args.output}: A, {steps}, B ({args.steps + 2} x {args.bars} bars){sampled}")
    return 0
