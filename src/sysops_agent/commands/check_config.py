"""``sysops-agent check-config PATH``: report every problem, or confirm the file is valid."""

from __future__ import annotations

import argparse

from sysops_agent.commands import SubParsers


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "check-config",
        help="validate a configuration file",
        description="Validate a configuration file and list every problem.",
        epilog="Exit status: 0 when valid; 1 with every problem listed; 2 for a usage error.",
    )
    p.add_argument("path", metavar="PATH", help="configuration file (TOML)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sysops_agent.config import load_config
    from sysops_agent.config_checks import metric_name_problems, path_problems
    from sysops_agent.redact import Redactor

    loaded = load_config(args.path)
    redact = Redactor(loaded.secrets.values())
    # the paths as this user sees them: a permission missing here may be there for the agent's user
    problems = loaded.problems + path_problems(loaded.config.agent)
    errors = [p for p in problems if not (p.warning or p.permission)]
    warnings = [p for p in problems if p.warning or p.permission]
    if not loaded.fatal:
        warnings += metric_name_problems(loaded.config)
    for p in warnings:
        print(f"{args.path}: warning: {redact(str(p))}")
    if not errors:
        print(f"{args.path}: configuration is valid")
        return 0
    print(f"{args.path}: {len(errors)} problem(s):")
    for p in errors:
        marker = "error" if p.fatal else "invalid"
        print(f"  {marker}: {redact(str(p))}")
    return 1
