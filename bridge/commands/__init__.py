"""CLI subcommands: one module a command, each with `register(subparsers)`.

A module's `register` adds its parser and sets `handler=function(args) -> int`. Keep heavy imports
(torch, rtmidi) inside the handler so that `musebridge --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Mapping

COMMAND_MODULES: tuple[str, ...] = (
    "serve",
    "ports",
    "bench",
    "device",
    "train",
    "eval",
    "interpolate",
    "sample",
    "continue_",
    "data",
    "transfer",
)


def add_model_subcommands(parser: argparse.ArgumentParser, dest: str, table: Mapping[str, str]) -> None:
    """Give `parser` one sub-subcommand per model: `table` maps a model name to "module:function",
    and each function registers its parser on the subparsers it is given. Without a model the
    command prints its help and exits 2."""

    def show_help(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    models = parser.add_subparsers(dest=dest, metavar="MODEL")
    parser.set_defaults(handler=show_help)
    for target in table.values():
        module_name, _, function = target.partition(":")
        getattr(importlib.import_module(module_name), function)(models)
