"""``sysops-agent collect --once [--json]``: one collection of every enabled collector."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, Optional

from sysops_agent.commands import SubParsers, add_config_arg, load_or_exit


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "collect",
        help="collect once and print the samples",
        description=(
            "Run every enabled collector once (two readings one second apart, so that rates "
            "are included) and print the samples as a table or as JSON lines."
        ),
        epilog=(
            "Exit status: 0 when every collector worked; 1 when some failed (their names "
            "and errors on stderr, the others' samples printed); 3 when every collector "
            "failed (nothing collected); 2 for a usage or config error."
        ),
    )
    add_config_arg(p)
    p.add_argument("--once", action="store_true", required=True, help="collect once and exit")
    p.add_argument(
        "--json", action="store_true", help='JSON lines: {"ts","metric","labels","value"}'
    )
    p.add_argument("--procfs", metavar="DIR", help="procfs root (overrides agent.proc_root)")
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECS",
        help="seconds between the two readings",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sysops_agent.collectors.registry import collect_once
    from sysops_agent.procfs import ProcFS

    loaded = load_or_exit(args.config)
    agent = loaded.config.agent
    procfs = ProcFS(args.procfs or agent.proc_root, agent.sys_root)
    outcome: Dict[str, Optional[str]] = {}
    samples = collect_once(procfs, loaded.config.collector, args.interval, outcome=outcome)
    out = sys.stdout
    if args.json:
        for s in samples:
            out.write(json.dumps(s.to_json_obj(), sort_keys=False) + "\n")
    else:
        width = max((len(s.metric) for s in samples), default=10)
        for s in sorted(samples, key=lambda s: (s.metric, s.labels)):
            labels = ",".join(f"{k}={v}" for k, v in s.labels)
            out.write(f"{s.metric:<{width}}  {_fmt(s.value):>16}  {labels}\n")
    out.flush()
    return exit_status(outcome, collected=len(samples))


#: every collector failed: nothing was collected
EXIT_ALL_FAILED = 3


def exit_status(outcome: Dict[str, Optional[str]], collected: int = -1) -> int:
    """0, or 1 / 3 with the failed collectors listed on stderr.

    3 when every collector failed, or when some failed and the others found
    nothing to report (collectors whose source is absent, PSI or cgroups on a
    tree without them, report nothing rather than fail): nothing was collected.
    """
    failed = sorted(name for name, error in outcome.items() if error is not None)
    if not failed:
        return 0
    if len(failed) == len(outcome):
        print(
            f"sysops-agent: every collector failed ({', '.join(failed)}): nothing collected",
            file=sys.stderr,
        )
        return EXIT_ALL_FAILED
    if collected == 0:
        print(
            f"sysops-agent: {len(failed)} of {len(outcome)} collectors failed "
            f"({', '.join(failed)}) and the others found nothing: nothing collected",
            file=sys.stderr,
        )
        return EXIT_ALL_FAILED
    print(
        f"sysops-agent: {len(failed)} of {len(outcome)} collectors failed: {', '.join(failed)}",
        file=sys.stderr,
    )
    return 1


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.3f}"
