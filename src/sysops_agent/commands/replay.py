"""``sysops-agent replay FILE... [--config PATH] [--metric NAME]`` (SPEC §13)."""

from __future__ import annotations

import argparse
import sys

from sysops_agent.commands import SubParsers, add_config_arg


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "replay",
        help="run recorded samples through the analyzers on a virtual clock",
        description=(
            "Run recorded samples through the analyzers and the alert manager's dedup on a "
            "virtual clock (no sleeping) and print every alert notification that would be "
            "delivered, one JSON line each (the webhook JSON). Inputs: JSON lines "
            '{"ts", "metric", "labels", "value"} or CSV with the header timestamp,value '
            "(timestamps YYYY-MM-DD HH:MM:SS, UTC). Bad lines are reported on stderr with "
            "their line number and skipped."
        ),
        epilog=(
            "Exit status: 0 after the replay (bad lines are skipped, not fatal); 2 when a "
            "file cannot be read or for a usage or config error."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="JSON-lines or CSV file(s)")
    add_config_arg(p)
    p.add_argument(
        "--metric",
        metavar="NAME",
        help="series name for CSV input (default: the file's stem)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os
    from contextlib import ExitStack

    from sysops_agent.commands import load_or_exit
    from sysops_agent.config import resolve_hostname
    from sysops_agent.replay import Replayer, merged, read_file

    loaded = load_or_exit(args.config)
    config = loaded.config

    def errors(message: str) -> None:
        print(f"sysops-agent: {message}", file=sys.stderr)

    with ExitStack() as stack:
        files = []
        for path in args.files:
            try:
                fh = stack.enter_context(open(path, encoding="utf-8", errors="replace"))
            except OSError as e:
                errors(f"cannot read {path}: {e.strerror or e}")
                return 2
            files.append((path, read_file(fh, path, args.metric, errors)))
        replayer = Replayer(config, resolve_hostname(config), errors)
        out = sys.stdout
        dumps = json.dumps
        try:
            for alert in replayer.run(merged(files)):
                out.write(dumps(alert.to_json_obj()) + "\n")
            out.flush()
        except BrokenPipeError:  # `replay ... | head`: the reader is gone, stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
    return 0
