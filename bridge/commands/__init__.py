"""CLI subcommands: one module a command, each with `register(subparsers)`.

A module's `register` adds its parser and sets `handler=function(args) -> int`. Keep heavy imports
(torch, rtmidi) inside the handler so that `musebridge --help` stays fast.
"""

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
