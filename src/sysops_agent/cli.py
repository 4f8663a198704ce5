"""Command line: ``sysops-agent <command>`` (SPEC §13).

Each sub-command lives in its own module under ``sysops_agent.commands`` and
exposes ``register(subparsers)``, which adds its parser and sets ``func``.
Adding a command is one module plus one line in :data:`COMMANDS`. Modules are
imported only when the command line is parsed, and each keeps its heavy
imports inside its ``run`` function, so ``run`` does not pay for ``history``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from sysops_agent import __version__, lazyssl

#: sub-command modules, in the order ``--help`` lists them
COMMANDS = [
    "sysops_agent.commands.run",
    "sysops_agent.commands.collect",
    "sysops_agent.commands.check_config",
    "sysops_agent.commands.test_alert",
    "sysops_agent.commands.replay",
    "sysops_agent.commands.history",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sysops-agent",
        description="Lightweight, security-minded monitoring daemon for Linux servers.",
    )
    parser.add_argument("--version", action="version", version=f"sysops-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    lazyssl.import_asyncio()  # before any command imports it: OpenSSL only if TLS is used
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
