"""Argument types every command shares: a value out of range (NaN and infinities included) is refused by
argparse with one line naming the option and its range, before any file or model is touched."""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from pathlib import Path

from musebridge.core.clock import MAX_BPM, MIN_BPM
from musebridge.errors import UserError

MAX_TEMPERATURE = 10.0
MAX_SEED = 2**32 - 1  # numpy's seed range; torch takes more


def bounded(
    convert: Callable[[str], float], low: float, high: float, what: str, unit: str = "", noun: str = "number"
) -> Callable[[str], float]:
    """An argparse type: `convert(text)` checked to lie in low..high, with a one-line reason if not.

    NaN fails the range test, so it is refused like any other value outside it.
    """

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"not a {noun}: {text!r}") from None
        if not low <= value <= high:
            allowed = f"{_show(low)}..{_show(high)}{unit}"
            raise argparse.ArgumentTypeError(f"{what} must be {allowed}, got {_show(value)}")
        return value

    return parse


def _show(number: float) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


tempo_bpm = bounded(float, MIN_BPM, MAX_BPM, "tempo", " BPM")
"""A tempo in BPM, the range the daemon's clocks accept (20..400)."""
temperature = bounded(float, 0.0, MAX_TEMPERATURE, "temperature")
"""A sampling temperature, 0 (argmax) .. 10."""
seed = bounded(int, 0, MAX_SEED, "seed", noun="whole number")
"""A random seed, 0 .. 2**32 - 1."""
port = bounded(int, 0, 65535, "port", noun="port number")
guidance = bounded(float, 0.0, 20.0, "guidance")
"""The universal translator's input guidance in logits, 0 (the paper's decoding) .. 20 (every played
note kept); models/umt/model.py MAX_GUIDANCE is the same bound (a test checks)."""


def add_genre_options(parser: argparse.ArgumentParser, dest: str, default: str, what: str = "use") -> None:
    """--genre NAME (repeatable) and --genres NAME [NAME ...] filling one list, `args.<dest>`: every
    command that takes several genres accepts both spellings. None when neither is given (the command
    then takes `default`, which the help names)."""
    parser.add_argument("--genre", action="append", dest=dest, metavar="NAME",
                        help=f"a genre to {what} (repeatable; default {default})")
    parser.add_argument("--genres", action="extend", nargs="+", dest=dest, metavar="NAME",
                        help="several genres at once (the same list as --genre)")


def add_dataset_option(parser: argparse.ArgumentParser, help: str, dest: str = "dataset") -> None:
    """--dataset PATH (or --data) into `args.<dest>`: the built dataset a train or eval command reads."""
    parser.add_argument("--dataset", "--data", dest=dest, type=Path, help=help)


def add_seed_option(parser: argparse.ArgumentParser) -> None:
    """--seed for commands that generate music: unset means a fresh seed each run (the summary names it)."""
    parser.add_argument("--seed", type=seed, default=None,
                        help="random seed, 0..2**32-1 (default: a new one each run, printed; "
                        "give it to repeat a result)")


def chosen_seed(args: argparse.Namespace) -> int:
    """The run's seed: --seed, or a fresh one stored back into args so the summary can print it."""
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(MAX_SEED + 1)
    return args.seed


def refuse_overwriting_an_input(output: Path, *inputs: Path) -> None:
    """UserError when -o names one of the input files: the input would be lost if the run fails midway,
    and a user who wants it replaced can move the result over it."""
    target = output.expanduser().resolve()
    for path in inputs:
        if path.expanduser().resolve() == target:
            raise UserError(f"-o {output} is the input file; write the result to another file")
