"""`musebridge ports` (being built)."""

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser("ports", help="(being built)")
