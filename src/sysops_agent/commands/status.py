"""``sysops-agent status``: what the running daemon sees now, over its control socket.

A human table (at most :data:`WIDTH` columns) or the daemon's JSON answer
with ``--json``. Exit status: 0 healthy, 1 degraded (a channel failing or
disabled, a collector whose last run failed), 3 when no daemon answers (as
``systemctl is-active``).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence

from sysops_agent.commands import SubParsers, add_config_arg

#: the widest line of the table
WIDTH = 100
EXIT_DEGRADED = 1
EXIT_NO_DAEMON = 3


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "status",
        help="what the running agent sees now (alerts, channels, collectors, silences)",
        description="Ask the running agent over its control socket (<data_dir>/control.sock) "
        "what it sees now.",
        epilog="Exit status: 0 healthy; 1 degraded (a channel failing, a collector erroring); "
        "3 no agent answers.",
    )
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="print the daemon's JSON answer")
    p.set_defaults(func=run)


def ask(config: Optional[str], req: Dict[str, Any]) -> Dict[str, Any]:
    """The daemon's answer to ``req``; exits 3 with a message when none answers."""
    from sysops_agent.commands import load_or_exit
    from sysops_agent.control import ControlUnavailable, request, socket_path

    loaded = load_or_exit(config, quiet_warnings=True)
    try:
        return request(socket_path(loaded.config.agent.data_dir), req)
    except ControlUnavailable as e:
        print(f"sysops-agent: {e}", file=sys.stderr)
        raise SystemExit(EXIT_NO_DAEMON) from None


def run(args: argparse.Namespace) -> int:
    from sysops_agent.control_api import degraded

    answer = ask(args.config, {"cmd": "status"})
    if not answer.get("ok", False):
        print(f"sysops-agent: {answer.get('error', 'the agent refused')}", file=sys.stderr)
        return EXIT_NO_DAEMON
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    else:
        print(render(answer))
    return EXIT_DEGRADED if degraded(answer) else 0


# ------------------------------------------------------------------------------- text


def span(secs: float) -> str:
    """``45s``, ``12m``, ``3h 05m``, ``2d 04h``."""
    s = int(max(0.0, secs))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def when(ts: Optional[float], now: float) -> str:
    if ts is None:
        return "-"
    return f"{span(now - ts)} ago" if ts <= now else f"in {span(ts - now)}"


def utc(ts: Optional[float]) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%MZ")


def mb(n: Optional[float]) -> str:
    return "-" if n is None else f"{n / 1e6:.1f} MB"


def table(title: str, headers: Sequence[str], rows: List[List[str]], empty: str) -> List[str]:
    """A titled table whose last column takes what is left of :data:`WIDTH`."""
    lines = [title]
    if not rows:
        return [*lines, f"  {empty}", ""]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = min(max(widths[i], len(cell)), 32)
    for row in [list(headers), *rows]:
        cells = [_fit(c, w).ljust(w) for c, w in zip(row[:-1], widths)]
        line = "  " + "  ".join([*cells, row[-1]])
        lines.append(_fit(line.rstrip(), WIDTH))
    return [*lines, ""]


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _series(alert: Dict[str, Any]) -> str:
    labels = ",".join(f"{k}={v}" for k, v in sorted(alert.get("labels", {}).items()))
    return f"{alert['metric']}{{{labels}}}" if labels else str(alert["metric"])


def render(st: Dict[str, Any]) -> str:
    """Long on purpose: the layout of the status report, section after section, as it reads on
    the screen.
    """
    from sysops_agent.control_api import degraded

    now = float(st["now"])
    problems = degraded(st)
    head = (
        f"sysops-agent {st['version']} on {st['hostname']} (pid {st['pid']}): "
        f"up {span(st['uptime_secs'])}, RSS {mb(st.get('rss_bytes'))}, "
        f"CPU {st['cpu_percent']:.1f} % ({st['cpu_secs']:.1f} s)"
    )
    lines = [_fit(head, WIDTH)]
    lines.append("health: " + ("degraded" if problems else "healthy"))
    lines += [_fit(f"  - {p}", WIDTH) for p in problems]
    lines.append("")
    alerts = st.get("alerts", [])
    muted = st.get("muted_total", {})
    counts = ", ".join(f"{k} {v}" for k, v in sorted(muted.items()) if v)
    lines += table(
        f"FIRING ALERTS ({len(alerts)})" + (f"  muted so far: {counts}" if counts else ""),
        ["SEVERITY", "SINCE", "VALUE", "ANALYZER", "STATE", "ID", "SERIES"],
        [
            [
                a["severity"],
                when(a["since"], now),
                a["value_text"],
                a["analyzer"],
                a.get("muted")
                or ("acked" if a.get("acked_by") else "flapping" if a.get("flapping") else "-"),
                a["id"][:8],
                _series(a),
            ]
            for a in alerts
        ],
        "none",
    )
    lines += table(
        "CHANNELS",
        ["NAME", "SENT", "FAILED", "QUEUED", "STATE", "LAST SUCCESS", "LAST ERROR"],
        [
            [
                c["name"],
                str(c["sent"]),
                str(c["failed"]),
                str(c["queued"]),
                "disabled" if c.get("disabled") else "enabled",
                when(c.get("last_ok"), now),
                "-"
                if not c.get("last_error")
                else f"{when(c['last_error'][0], now)}: {c['last_error'][1]}",
            ]
            for c in st.get("channels", [])
        ],
        "none",
    )
    lines += table(
        "COLLECTORS",
        ["NAME", "INTERVAL", "LAST RUN", "DURATION", "FAILURES", "LAST ERROR"],
        [
            [
                c["name"],
                f"{c['interval_secs']:g}s",
                when(c.get("last_run"), now),
                "-" if c.get("duration_secs") is None else f"{c['duration_secs'] * 1000:.1f} ms",
                str(c.get("failures", 0)),
                c.get("last_error") or "-",
            ]
            for c in st.get("collectors", [])
        ],
        "none",
    )
    lines += table(
        "LOG SOURCES",
        ["SOURCE", "POSITION", "PATH / ERROR"],
        [
            [
                s["source"],
                "-" if s.get("position") is None else str(s["position"]),
                s.get("error") or s.get("path") or "-",
            ]
            for s in st.get("log_sources", [])
        ],
        "none (log watcher off)",
    )
    lines += table(
        "SILENCES",
        ["ID", "ENDS", "BY", "MATCHERS / COMMENT"],
        [
            [
                s["id"][:8],
                f"{utc(s['ends_at'])} ({when(s['ends_at'], now)})",
                s.get("created_by") or "-",
                " ".join(s["matchers"]) + (f"  # {s['comment']}" if s.get("comment") else ""),
            ]
            for s in st.get("silences", [])
        ],
        "none active",
    )
    lines += table(
        "MAINTENANCE WINDOWS",
        ["NAME", "STATE", "NEXT OPENS", "MATCHERS"],
        [
            [
                w.get("name") or "-",
                f"open, ends {when(w['ends_at'], now)}" if w["open"] else "closed",
                f"{utc(w.get('next_start'))} ({when(w.get('next_start'), now)})",
                " ".join(w["matchers"]) or "(all but emergencies)",
            ]
            for w in st.get("maintenance", [])
        ],
        "none configured",
    )
    return "\n".join(lines).rstrip()
