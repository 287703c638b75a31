"""`musebridge serve` (being built)."""

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser("serve", help="(being built)")
