"""The `musebridge` command line: argparse with one module per subcommand (musebridge.commands)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from musebridge import __version__
from musebridge.commands import COMMAND_MODULES
from musebridge.errors import UserError


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage dump) and exit code 2.

    Subparsers inherit the class, so every subcommand reports bad options the same way.
    """

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, every subcommand registered."""
    parser = OneLineErrorParser(
        prog="musebridge",
        description="Realtime bridge between a DAW and neural music models "
        "(genre transfer, call and response, MusicVAE interpolation).",
    )
    parser.add_argument("--version", action="version", version=f"musebridge {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"musebridge.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except UserError as error:
        print(f"musebridge {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
