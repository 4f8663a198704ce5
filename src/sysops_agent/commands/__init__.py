"""Sub-commands; each module exposes ``register(subparsers)``."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

from sysops_agent.config import LoadResult, Overrides, load_config
from sysops_agent.redact import Redactor


def add_config_arg(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument(
        "--config",
        "-c",
        metavar="PATH",
        required=required,
        help="configuration file (TOML); without it every key takes its default",
    )


def load_or_exit(
    path: Optional[str], *, quiet_warnings: bool = False, overrides: Optional[Overrides] = None
) -> LoadResult:
    """Load the config for a command: fatal problems print and exit 2; others print as warnings."""
    loaded = load_config(path, overrides=overrides)
    redact = Redactor(loaded.secrets.values())
    if loaded.fatal:
        for p in loaded.fatal:
            print(f"sysops-agent: {redact(str(p))}", file=sys.stderr)
        raise SystemExit(2)
    if not quiet_warnings:
        for p in loaded.problems:
            print(f"sysops-agent: warning: config {redact(str(p))}", file=sys.stderr)
    return loaded


SubParsers = Any  # argparse's _SubParsersAction is private
