"""``sysops-agent run``: the daemon, in the foreground (systemd-friendly)."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, List

from sysops_agent.commands import SubParsers, add_config_arg, load_or_exit

if TYPE_CHECKING:
    from sysops_agent.config import AgentConfig
    from sysops_agent.schema import Problem


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "run",
        help="run the agent in the foreground",
        description="Run the agent in the foreground until SIGTERM/SIGINT; SIGHUP reloads the config.",
        epilog=(
            "Exit status: 0 after a clean stop (SIGTERM, SIGINT); 1 when the agent cannot "
            "start (e.g. its PID file is held by a running agent); 2 for a usage error or "
            "an invalid config. Under systemd (Type=notify) it reports READY=1 after the "
            "first collection, pings the watchdog and shows the firing alerts in STATUS=."
        ),
    )
    add_config_arg(p)
    p.add_argument("--procfs", metavar="DIR", help="procfs root (overrides agent.proc_root)")
    p.set_defaults(func=run)


def exit_on_path_problems(agent: AgentConfig) -> List[Problem]:
    """Exit 2 (no traceback) when the PID file or log file cannot be created; the key and a fix.

    A ``data_dir`` the agent cannot use is only a warning (returned, to be
    logged): the agent runs without history and log cursors.
    """
    import sys

    from sysops_agent.config_checks import path_problems

    problems = path_problems(agent)
    fatal = [p for p in problems if p.path != "agent.data_dir" or p.fatal]
    for p in fatal:
        print(f"sysops-agent: {p}", file=sys.stderr)
    if fatal:
        raise SystemExit(2)
    return problems


def run(args: argparse.Namespace) -> int:
    from sysops_agent.agent_logging import setup_logging
    from sysops_agent.config import Overrides
    from sysops_agent.daemon import run_daemon
    from sysops_agent.redact import Redactor

    overrides = Overrides(proc_root=args.procfs)
    loaded = load_or_exit(args.config, quiet_warnings=True, overrides=overrides)
    agent = loaded.config.agent
    path_warnings = exit_on_path_problems(agent)
    setup_logging(agent.log_level, agent.log_file, Redactor(loaded.secrets.values()))
    import logging

    from sysops_agent import lazyssl

    logging.getLogger("sysops_agent.lazyssl").debug("%s", lazyssl.decision())
    log = logging.getLogger("sysops_agent.config")
    for problem in loaded.problems + path_warnings:
        log.warning("config: %s", problem)
    return asyncio.run(run_daemon(loaded, args.config, overrides))
