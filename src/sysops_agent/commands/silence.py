"""``sysops-agent silence add|list|expire``: mute matching alerts for a while (amtool's habits).

``silence add MATCHER... --for 2h|--until TIME [--comment TEXT]`` with
matchers ``name=value``, ``name!=value``, ``name=~regex``, ``name!~regex`` on
the alert's metric, severity, analyzer and labels. The running daemon keeps
the silence (in ``<data_dir>/silences.json``: it survives restarts).

Exit status: 0 done; 1 the agent refused the request (a bad matcher, no
such silence); 2 a usage error; 3 no agent answers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from datetime import datetime, timedelta
from typing import Any, Dict

from sysops_agent.commands import SubParsers, add_config_arg

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "silence",
        help="add, list or expire silences in the running agent",
        description="Silences mute the alerts their matchers select until they end; an "
        "alert still firing then is sent. An emergency is muted only by a matcher that "
        "names its severity (severity=emergency).",
        epilog="Exit status: 0 done; 1 refused by the agent; 3 no agent answers.",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="add a silence")
    add.add_argument(
        "matchers",
        nargs="+",
        metavar="MATCHER",
        help='metric=disk_usage_percent, mountpoint=~"/srv.*", severity!=emergency',
    )
    until = add.add_mutually_exclusive_group(required=True)
    until.add_argument("--for", dest="duration", metavar="DURATION", help="e.g. 30m, 2h, 1d")
    until.add_argument(
        "--until",
        metavar="TIME",
        help="local time HH:MM (the next one) or ISO-8601 (2026-12-01T08:00, ...Z)",
    )
    add.add_argument("--comment", default="", help="why (shown in status and list)")
    lst = verbs.add_parser("list", help="list the silences (active and recently ended)")
    lst.add_argument("--json", action="store_true", help="JSON output")
    exp = verbs.add_parser("expire", help="end a silence now")
    exp.add_argument("id", metavar="ID", help="the silence's id or a unique prefix of it")
    for sp in (add, lst, exp):
        add_config_arg(sp)
    p.set_defaults(func=run)


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``2h``, ``1h30m``, ``1d``; ValueError otherwise."""
    t = text.strip().lower()
    parts = _PART.findall(t)
    if not parts or "".join(n + u for n, u in parts) != t:
        raise ValueError(f"invalid duration {text!r} (expected e.g. 30m, 2h, 1h30m, 1d)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_until(text: str, now: float) -> float:
    """``HH:MM`` (the next such local time) or an ISO-8601 time (naive = local)."""
    t = text.strip()
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", t)
    if m:
        base = datetime.fromtimestamp(now)
        at = base.replace(hour=int(m.group(1)), minute=int(m.group(2)), second=0, microsecond=0)
        if at.timestamp() <= now:
            at += timedelta(days=1)
        return at.timestamp()
    try:
        dt = datetime.fromisoformat(t[:-1] + "+00:00" if t.endswith(("Z", "z")) else t)
    except ValueError:
        raise ValueError(f"invalid time {text!r} (expected HH:MM or 2026-12-01T08:00)") from None
    return dt.timestamp()


def _user() -> str:
    try:
        import pwd

        return os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        return str(os.getuid())


def _local(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def run(args: argparse.Namespace) -> int:
    from sysops_agent.commands.status import ask

    req: Dict[str, Any]
    if args.verb == "add":
        now = time.time()
        try:
            ends = now + parse_duration(args.duration) if args.duration else None
            if ends is None:
                ends = parse_until(args.until, now)
        except ValueError as e:
            print(f"sysops-agent silence add: {e}", file=sys.stderr)
            return 2
        req = {
            "cmd": "silence_add",
            "matchers": args.matchers,
            "ends_at": ends,
            "comment": args.comment,
            "by": _user(),
        }
    elif args.verb == "list":
        req = {"cmd": "silence_list"}
    else:
        req = {"cmd": "silence_expire", "id": args.id}
    answer = ask(args.config, req)
    if not answer.get("ok", False):
        print(f"sysops-agent silence {args.verb}: {answer.get('error')}", file=sys.stderr)
        return 1
    if args.verb == "add":
        s = answer["silence"]
        n = int(answer.get("matching_firing", 0))
        print(f"silence {s['id'][:8]} added until {_local(s['ends_at'])}")
        if n:
            print(f"it matches {n} firing alert{'s' if n != 1 else ''}")
        else:
            print("note: it matches no alert firing now (added anyway)")
        if not answer.get("saved", True):
            print("warning: the agent could not save it; it lasts until the agent restarts")
    elif args.verb == "list":
        if args.json:
            print(json.dumps(answer["silences"], indent=2))
        else:
            _print_list(answer)
    else:
        print(f"silence {answer['silence']['id'][:8]} expired")
    return 0


def _print_list(answer: Dict[str, Any]) -> None:
    silences = answer["silences"]
    if not silences:
        print("no silences")
        return
    print(f"{'ID':<9} {'STATE':<7} {'ENDS':<22} {'BY':<10} MATCHERS / COMMENT")
    for s in silences:
        state = "active" if s["active"] else "ended"
        text = " ".join(s["matchers"]) + (f"  # {s['comment']}" if s["comment"] else "")
        line = (
            f"{s['id'][:8]:<9} {state:<7} {_local(s['ends_at']):<22} {s['created_by']:<10} {text}"
        )
        print(line if len(line) <= 100 else line[:99] + "…")
