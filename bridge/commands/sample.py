"""`musebridge sample --bars 2 -n 4 -o OUT.mid`: MusicVAE phrases from the prior, one after another."""

from __future__ import annotations

import argparse
from pathlib import Path

from musebridge.commands import arguments
from musebridge.commands.arguments import chosen_seed
from musebridge.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    from musebridge.commands.interpolate import add_model_options

    parser = subparsers.add_parser(
        "sample",
        help="MusicVAE melodies sampled from the prior",
        description="Draw z from N(0, I), decode at --temperature, write the phrases one after another.",
    )
    parser.add_argument("--bars", type=int, default=2, choices=(2, 4), help="bars per phrase (default 2)")
    parser.add_argument("-n", "--count", type=int, default=4, help="how many phrases (default 4)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.mid")
    parser.add_argument("--temperature", type=arguments.temperature, default=1.0,
                        help="decoder temperature 0..10 (0 = argmax; default 1)")
    parser.add_argument("--velocity", type=int, default=90, help="note velocity 1..127 (default 90)")
    parser.add_argument("--tempo", type=arguments.tempo_bpm, default=120.0,
                        help="BPM of the written file, 20..400 (default 120)")
    add_model_options(parser)
    parser.set_defaults(handler=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    from musebridge.commands.interpolate import load_vae
    from musebridge.midi_files import write_phrases_midi

    if not 1 <= args.count <= 1024:
        raise UserError(f"-n must be 1..1024, got {args.count}")
    if not 1 <= args.velocity <= 127:
        raise UserError(f"--velocity must be 1..127, got {args.velocity}")
    vae = load_vae(args)
    vae.velocity = args.velocity
    phrases = vae.sample_phrases(args.count, args.bars, temperature=args.temperature,
                                  seed=chosen_seed(args))
    write_phrases_midi(phrases, args.output, args.tempo)
    notes = sum(len(p.notes) for p in phrases)
    print(f"wrote {args.output}: {args.count} x {args.bars} bars, {notes} notes, seed {args.seed}")
    return 0
