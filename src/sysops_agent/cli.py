"""Command line: ``sysops-agent <command>`` (SPEC §13)."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from sysops_agent import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sysops-agent",
        description="Lightweight, security-minded monitoring daemon for Linux servers.",
    )
    parser.add_argument("--version", action="version", version=f"sysops-agent {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args))
