"""`musebridge bench` (being built)."""

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser("bench", help="(being built)")
