"""`musebridge ports`: the MIDI ports each backend sees, and why a backend is unavailable."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ports",
        help="list MIDI input and output ports per backend",
        description="List MIDI input and output ports per backend (alsa, coremidi, jack, winmm), "
        "say which backends are unavailable and why, and which one --midi-backend auto would pick.",
    )
    parser.add_argument(
        "--midi-backend",
        choices=("auto", "alsa", "coremidi", "jack", "winmm", "all"),
        default="all",
        help="one backend (auto: the one `serve` would pick), or all of them (default)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from musebridge.io.midi_ports import list_backends, resolve_backend

    auto_backend, auto_reason = resolve_backend("auto")
    if args.midi_backend == "all":
        wanted = None
    elif args.midi_backend == "auto":
        wanted = [] if auto_backend == "none" else [auto_backend]
    else:
        wanted = [args.midi_backend]
    listings = list_backends(wanted) if wanted != [] else []
    if args.json:
        payload = {
            "auto": {"backend": auto_backend, "reason": auto_reason},
            "backends": [listing.__dict__ for listing in listings],
        }
        json.dump(payload, sys.stdout, indent=2)
        print()
        return 0
    for listing in listings:
        if not listing.available:
            print(f"{listing.backend}: unavailable: {listing.reason}")
            continue
        note = f" ({listing.reason})" if listing.reason else ""
        print(f"{listing.backend}:{note}")
        sections = (("inputs (we read from)", listing.inputs), ("outputs (we write to)", listing.outputs))
        for title, names in sections:
            print(f"  {title}:")
            for name in names or ["(none)"]:
                print(f"    {name}")
    print(f"auto: {auto_backend} ({auto_reason})")
    return 0
