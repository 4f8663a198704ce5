"""Command line: ``sysops-agent <command>`` (SPEC §13).

Each sub-command lives in its own module under ``sysops_agent.commands`` and
exposes ``register(subparsers)``, which adds its parser and sets ``func``.
Adding a command is one module plus one line in :data:`COMMANDS`. Only the
module of the command being run is imported (all of them for the top-level
``--help`` or a mistyped command, so that argparse can list them), and each
keeps its heavy imports inside its ``run`` function: the daemon does not carry
``history``'s code (0.2 MiB for all the other commands).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, List, Optional

from sysops_agent import __version__, lazyssl

#: command name -> its module, in the order ``--help`` lists them
COMMANDS = {
    "run": "sysops_agent.commands.run",
    "collect": "sysops_agent.commands.collect",
    "check-config": "sysops_agent.commands.check_config",
    "test-alert": "sysops_agent.commands.test_alert",
    "replay": "sysops_agent.commands.replay",
    "history": "sysops_agent.commands.history",
}


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: COLUMNS, else the terminal, else 80."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, told the width: left to itself it imports :mod:`shutil`
    (with bz2 and lzma, 0.5 MiB of the daemon's RSS) only to read the terminal size."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: Optional[int] = None,
    ) -> None:
        if width is None:
            width = terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose help uses :class:`HelpFormatter`, sub-commands' too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser(argv: Optional[List[str]] = None) -> argparse.ArgumentParser:
    """The parser; for an ``argv`` naming a known command, with only that command's."""
    parser = Parser(
        prog="sysops-agent",
        description="Lightweight, security-minded monitoring daemon for Linux servers.",
    )
    parser.add_argument("--version", action="version", version=f"sysops-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # The command is the first word that is not an option (the top level has no option
    # that takes a value).
    named = next((a for a in argv or () if not a.startswith("-")), None)
    modules = [COMMANDS[named]] if named in COMMANDS else list(COMMANDS.values())
    for module in modules:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    lazyssl.import_asyncio()  # before any command imports it: OpenSSL only if TLS is used
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
