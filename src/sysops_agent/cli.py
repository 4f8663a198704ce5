"""Command line: ``sysops-agent <command>`` (SPEC §13).

Each sub-command lives in its own module under ``sysops_agent.commands`` and
exposes ``register(subparsers)``, which adds its parser and sets ``func``.
Adding a command is one module plus its line in :data:`COMMANDS` and its
one-line summary in :data:`SUMMARIES` (what ``--help`` prints without importing
any command; a test checks it against the command's own help). Only the
module of the command being run is imported (all of them for a mistyped
command, so that the error can list them), and each
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
    "status": "sysops_agent.commands.status",
    "silence": "sysops_agent.commands.silence",
    "ack": "sysops_agent.commands.ack",
}

#: each command's line in the top-level ``--help``, which is printed without importing
#: the commands (they bring asyncio and the config machinery: ~0.1 s of CPU); each
#: module's ``register`` gives its parser the same text (a test compares them)
SUMMARIES = {
    "run": "run the agent in the foreground",
    "collect": "collect once and print the samples",
    "check-config": "validate a configuration file",
    "test-alert": "send a test alert through the configured channels",
    "replay": "run recorded samples through the analyzers on a virtual clock",
    "history": "show a metric's history from the SQLite database",
    "status": "what the running agent sees now (alerts, channels, collectors, silences)",
    "silence": "add, list or expire silences in the running agent",
    "ack": "acknowledge a firing critical/emergency alert: no more repeats until it resolves",
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


#: exit statuses every command shares (each command's own are in its description)
COMMON_EXIT_STATUS = (
    "Every command: 2 for a usage error or an invalid configuration, 130 when "
    "interrupted (Ctrl-C), 141 when its output pipe was closed early (e.g. by head)."
)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def add_logging_args(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` and ``--log-format``, which every command takes."""
    group = parser.add_argument_group("logging")
    group.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help="log level: " + ", ".join(LOG_LEVELS) + " (default: agent.log_level for run, "
        "warning for the other commands)",
    )
    group.add_argument(
        "--log-format",
        choices=("text", "json"),
        metavar="FORMAT",
        help="text (default) or json: one JSON object per line with ts, level, logger, "
        "message and fields",
    )


def first_word(argv: Optional[List[str]]) -> Optional[str]:
    """The command: the first word that is not an option (the top level has no option
    that takes a value)."""
    return next((a for a in argv or () if not a.startswith("-")), None)


def build_parser(argv: Optional[List[str]] = None, light: bool = False) -> argparse.ArgumentParser:
    """The parser; for an ``argv`` naming a known command, with only that command's.

    ``light``: the commands as names and :data:`SUMMARIES` only, none of their
    modules imported (enough for ``--version``, ``--help`` and a bare call).
    """
    parser = Parser(
        prog="sysops-agent",
        description="Lightweight, security-minded monitoring daemon for Linux servers.",
        epilog=COMMON_EXIT_STATUS,
    )
    parser.add_argument("--version", action="version", version=f"sysops-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    named = first_word(argv)
    if light:
        for name, summary in SUMMARIES.items():
            sub.add_parser(name, help=summary)
    else:
        modules = [COMMANDS[named]] if named in COMMANDS else list(COMMANDS.values())
        for module in modules:
            importlib.import_module(module).register(sub)
    for command_parser in sub.choices.values():
        add_logging_args(command_parser)
    return parser


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[command]
            return found
    return parser  # pragma: no cover - build_parser always adds the sub-commands


def _unknown_command(parser: argparse.ArgumentParser, word: str) -> None:
    """Exit 2 with the top-level usage and the closest command names."""
    import difflib

    close = difflib.get_close_matches(word, list(COMMANDS), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    parser.error(f"unknown command {word!r}{hint} (commands: {', '.join(COMMANDS)})")


def _quiet_stdout() -> None:
    """The reader of our stdout is gone: point it at /dev/null so that the interpreter's
    last flush does not fail again (and print a traceback) on the way out."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    finally:
        os.close(devnull)


#: exit status after a closed output pipe: the shell's for a death by SIGPIPE (128 + 13)
EXIT_BROKEN_PIPE = 141


def main(argv: Optional[List[str]] = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    word = first_word(argv)
    if word is not None:  # a command (or a mistyped one): not for --version or --help
        lazyssl.import_asyncio()  # before any command imports it: OpenSSL only if TLS is used
    parser = build_parser(argv, light=word is None)
    if word is not None and word not in COMMANDS:
        _unknown_command(parser, word)
    args, extra = parser.parse_known_args(argv)
    if not getattr(args, "command", None):
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        parser.print_help(sys.stderr)
        return 2
    if extra:  # a bad flag gets the usage of the command it was given to
        _subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.log_level or args.log_format:
        from sysops_agent import agent_logging

        agent_logging.set_overrides(level=args.log_level, log_format=args.log_format)
        if args.command != "run":  # run sets up logging itself, from its config
            agent_logging.setup_logging(args.log_level or "warning")
    try:
        status = int(args.func(args))
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return 130
