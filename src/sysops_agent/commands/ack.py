"""``sysops-agent ack ID [--comment TEXT]``: stop the repeats of a firing alert until it resolves.

The id is the alert's (``status`` shows its first 8 characters; any unique
prefix will do). The ack is announced once on the channels that got the alert.

Exit status: 0 acknowledged; 1 the agent refused (no such repeating alert,
already acknowledged); 3 no agent answers.
"""

from __future__ import annotations

import argparse
import sys

from sysops_agent.commands import SubParsers, add_config_arg


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "ack",
        help="acknowledge a firing critical/emergency alert: no more repeats until it resolves",
        description="Acknowledge a firing critical or emergency alert in the running agent.",
        epilog="Exit status: 0 acknowledged; 1 refused by the agent; 3 no agent answers.",
    )
    add_config_arg(p)
    p.add_argument("id", metavar="ALERT_ID", help="the alert's id or a unique prefix (see status)")
    p.add_argument("--comment", default="", help="why (announced with the ack)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sysops_agent.commands.silence import _user
    from sysops_agent.commands.status import ask

    answer = ask(args.config, {"cmd": "ack", "id": args.id, "comment": args.comment, "by": _user()})
    if not answer.get("ok", False):
        print(f"sysops-agent ack: {answer.get('error')}", file=sys.stderr)
        return 1
    alert = answer["alert"]
    print(f"acknowledged {alert['id'][:8]} ({alert['metric']}): no more repeats until it resolves")
    return 0
