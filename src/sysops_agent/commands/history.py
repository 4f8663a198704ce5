"""``sysops-agent history METRIC``: the SQLite history as a table with a sparkline, JSON or a PNG.

Reads the database read-only (the daemon need not run). Times are UTC.
``--since``/``--until`` take a duration back from now (``90s``, ``30m``, ``6h``,
``2d``, ``1w``), an ISO-8601 time (``2026-05-01T12:00``, ``...Z``, with an
offset; no offset = UTC), ``@<unix seconds>`` or ``now``.

Exit status: 0 with output; 1 when there is nothing to show (no database, an
unknown metric, no series with those labels, no rows in the range) or the
chart cannot be drawn; 2 for a malformed argument.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import re
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, TextIO, Tuple

from sysops_agent.commands import SubParsers, add_config_arg

if TYPE_CHECKING:
    from sysops_agent.storage.sqlite_reader import SeriesHistory

SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60
#: the table shows at most about this many rows per series unless --step says otherwise
TABLE_ROWS = 60
#: steps the automatic choice picks from (seconds)
NICE_STEPS = (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


class UsageError(Exception):
    """A malformed argument (exit status 2)."""


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "history",
        help="show a metric's history from the SQLite database",
        description=(
            "Show a metric's one-minute history (avg/min/max) from the agent's SQLite database"
            " as a table with a sparkline, JSON lines or a PNG chart. Times are UTC."
        ),
        epilog=(
            "WHEN is a duration back from now (30m, 6h, 2d, 1w), an ISO-8601 time "
            "(2026-05-01T12:00, naive = UTC), @UNIX_SECONDS or 'now'. --png needs the plot "
            "extra: pip install 'sysops-agent[plot]'. Exit status: 0 with output; 1 when "
            "there is nothing to show (no database, an unknown metric, with the closest "
            "names, no series with those labels, no rows in the range) or the chart cannot "
            "be drawn; 2 for a malformed argument."
        ),
    )
    p.add_argument("metric", metavar="METRIC", help="metric name, e.g. cpu_usage_percent")
    p.add_argument(
        "--labels",
        nargs="+",
        action="extend",
        default=[],
        metavar="K=V",
        help="only series whose labels include these (repeatable)",
    )
    p.add_argument("--since", default="6h", metavar="WHEN", help="start (default: 6h ago)")
    p.add_argument("--until", default="now", metavar="WHEN", help="end (default: now)")
    p.add_argument(
        "--step",
        metavar="DURATION",
        help="merge rows into buckets of this size (default: 1m for --json/--png, "
        f"about {TABLE_ROWS} rows for the table)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per row")
    p.add_argument("--png", metavar="FILE", help="draw a chart into FILE (needs matplotlib)")
    p.add_argument("--db", metavar="PATH", help="database file (default: from the config)")
    add_config_arg(p)
    p.set_defaults(func=run)


# --------------------------------------------------------------------------- parsing


def parse_duration(text: str) -> float:
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"invalid duration {text!r} (expected e.g. 90s, 30m, 6h, 2d, 1w)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_when(text: str, now: float) -> float:
    """A point in time: duration ago, ISO-8601 (naive = UTC), ``@unix`` or ``now``."""
    t = text.strip()
    if t == "now":
        return now
    if t.startswith("@"):
        try:
            return float(t[1:])
        except ValueError:
            raise UsageError(f"invalid unix time {text!r}") from None
    if _DURATION.match(t):
        return now - parse_duration(t)
    try:
        dt = datetime.fromisoformat(t[:-1] + "+00:00" if t.endswith(("Z", "z")) else t)
    except ValueError:
        raise UsageError(
            f"invalid time {text!r} (expected a duration like 6h, an ISO-8601 time like"
            " 2026-05-01T12:00Z, @UNIX_SECONDS or now)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def parse_labels(items: Sequence[str]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"invalid label filter {item!r} (expected NAME=VALUE)")
        out[key.strip()] = value
    return out


def auto_step(since: float, until: float, rows: int = TABLE_ROWS) -> int:
    span = max(until - since, 60.0)
    for step in NICE_STEPS:
        if span / step <= rows:
            return step
    return NICE_STEPS[-1]


# --------------------------------------------------------------------------- rendering


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def step_text(step: int) -> str:
    for unit, secs in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if step % secs == 0:
            return f"{step // secs}{unit}"
    return f"{step}s"


def format_value(metric: str, v: float) -> str:
    """Bytes in binary units, everything else with 6 significant digits."""
    if "_bytes" in metric and abs(v) >= 1024:
        units = ("KiB", "MiB", "GiB", "TiB", "PiB")
        i = 0
        v /= 1024.0
        while abs(v) >= 1024 and i < len(units) - 1:
            v /= 1024.0
            i += 1
        suffix = "/s" if metric.endswith("_per_second") else ""
        return f"{v:.2f} {units[i]}{suffix}"
    return f"{v:.6g}"


def sparkline(points: Sequence[tuple[int, float]], step: int, width: int = SPARK_WIDTH) -> str:
    """One character per bucket of ``(ts, value)`` points; a gap in the data is a space."""
    if not points:
        return ""
    first, last = points[0][0], points[-1][0]
    slots: List[Optional[float]] = [None] * (int((last - first) // step) + 1)
    for ts, value in points:
        slots[int((ts - first) // step)] = value
    per = max(1, math.ceil(len(slots) / width))
    cells: List[Optional[float]] = []
    for i in range(0, len(slots), per):
        chunk = [v for v in slots[i : i + per] if v is not None]
        cells.append(sum(chunk) / len(chunk) if chunk else None)
    present = [v for v in cells if v is not None]
    lo, hi = min(present), max(present)
    top = len(SPARK) - 1
    out = []
    for cell in cells:
        if cell is None:
            out.append(" ")
        elif hi == lo:
            out.append(SPARK[top // 2])
        else:
            out.append(SPARK[round((cell - lo) / (hi - lo) * top)])
    return "".join(out)


def series_name(metric: str, labels: Dict[str, str]) -> str:
    if not labels:
        return metric
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def print_table(series: Sequence[SeriesHistory], step: int, out: TextIO) -> None:
    for i, item in enumerate(series):
        pts = item.points
        if i:
            out.write("\n")
        total = sum(p[4] for p in pts)
        mean = sum(p[1] * p[4] for p in pts) / total
        lo = min(p[2] for p in pts)
        hi = max(p[3] for p in pts)
        m = item.metric
        out.write(
            f"{series_name(m, item.labels)}  {iso(pts[0][0])} .. {iso(pts[-1][0] + step)}"
            f"  step {step_text(step)}\n"
        )
        out.write(f"  {sparkline([(p[0], p[1]) for p in pts], step)}\n")
        out.write(
            f"  avg {format_value(m, mean)}  min {format_value(m, lo)}"
            f"  max {format_value(m, hi)}  ({total} samples)\n"
        )
        cols = [
            (iso(ts), format_value(m, a), format_value(m, mn), format_value(m, mx))
            for ts, a, mn, mx, _ in pts
        ]
        w = [
            max(len(h), *(len(c[j]) for c in cols))
            for j, h in enumerate(("time", "avg", "min", "max"))
        ]
        out.write(f"  {'time':<{w[0]}}  {'avg':>{w[1]}}  {'min':>{w[2]}}  {'max':>{w[3]}}\n")
        for c in cols:
            out.write(f"  {c[0]:<{w[0]}}  {c[1]:>{w[1]}}  {c[2]:>{w[2]}}  {c[3]:>{w[3]}}\n")


def print_json(series: Sequence[SeriesHistory], out: TextIO) -> None:
    for item in series:
        for ts, avg, lo, hi, n in item.points:
            obj = {
                "ts": ts,
                "time": iso(ts),
                "metric": item.metric,
                "labels": item.labels,
                "avg": avg,
                "min": lo,
                "max": hi,
                "count": n,
            }
            out.write(json.dumps(obj) + "\n")


class PlotUnavailable(Exception):
    pass


def draw_png(series: Sequence[SeriesHistory], path: str, title: str) -> None:
    """avg as a line, min..max as a band, one colour per series."""
    try:
        # Imported by name so that type checking does not depend on the optional extra.
        agg: Any = importlib.import_module("matplotlib.backends.backend_agg")
        mdates: Any = importlib.import_module("matplotlib.dates")
        mfigure: Any = importlib.import_module("matplotlib.figure")
    except ImportError as e:
        raise PlotUnavailable(
            f"--png needs matplotlib ({e}); install the plot extra: pip install 'sysops-agent[plot]'"
        ) from None
    fig = mfigure.Figure(figsize=(11, 4.5), dpi=100)
    agg.FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for item in series:
        xs = [datetime.fromtimestamp(p[0], tz=timezone.utc) for p in item.points]
        name = ",".join(f"{k}={v}" for k, v in sorted(item.labels.items())) or item.metric
        (line,) = ax.plot(xs, [p[1] for p in item.points], linewidth=1.2, label=name)
        ax.fill_between(
            xs,
            [p[2] for p in item.points],
            [p[3] for p in item.points],
            color=line.get_color(),
            alpha=0.18,
            linewidth=0,
        )
    locator = mdates.AutoDateLocator(tz=timezone.utc)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=timezone.utc))
    ax.set_title(title)
    ax.set_xlabel("time (UTC); line = average, band = min..max")
    ax.grid(True, alpha=0.3)
    if 1 < len(series) <= 12:
        ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    fig.savefig(path)


# --------------------------------------------------------------------------- command


class _Stop(Exception):
    """Ends the command with ``code`` after printing ``message`` to stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _window(args: argparse.Namespace, now: float) -> Tuple[float, float, Dict[str, str], int]:
    """``--since``, ``--until``, ``--labels`` and ``--step`` checked (exit 2 when malformed)."""
    try:
        since = parse_when(args.since, now)
        until = parse_when(args.until, now)
        match = parse_labels(args.labels)
        step = int(parse_duration(args.step)) if args.step else 0
    except UsageError as e:
        raise _Stop(2, str(e)) from None
    if until <= since:
        raise _Stop(2, f"--until ({iso(until)}) is not after --since ({iso(since)})")
    if args.step and step < 60:
        raise _Stop(2, "--step must be at least 1m (rows are per minute)")
    if not step:
        step = 60 if (args.json or args.png) else auto_step(since, until)
    return since, until, match, step


def _unknown_metric(metric: str, known: List[str], db: str) -> str:
    import difflib  # only for this hint: not on every start-up's import path

    hint = difflib.get_close_matches(metric, known, n=3)
    msg = f"no metric {metric!r} in {db}"
    if hint:
        return msg + f"; did you mean {', '.join(hint)}?"
    if known:
        return msg + f" ({len(known)} metrics, e.g. {', '.join(known[:5])})"
    return msg + " (it holds no metrics yet)"


def _select(
    reader: Any, db: str, metric: str, match: Dict[str, str], since: float, until: float, step: int
) -> List[Any]:
    """The series with rows in the window, or :class:`_Stop` saying why there are none."""
    if not reader.series(metric, {}):
        raise _Stop(1, _unknown_metric(metric, reader.metrics(), db))
    if not reader.series(metric, match):
        choices = "; ".join(
            ",".join(f"{k}={v}" for k, v in sorted(lb.items())) or "(no labels)"
            for _, lb in reader.series(metric, {})[:10]
        )
        wanted = " ".join(f"{k}={v}" for k, v in match.items())
        raise _Stop(1, f"no series of {metric} has labels {wanted}; its series: {choices}")
    series = [s for s in reader.query(metric, match, since, until, step) if s.points]
    if not series:
        spans = [reader.time_range(sid) for sid, _ in reader.series(metric, match)]
        have = [s for s in spans if s is not None]
        extent = (
            f"; it has data from {iso(min(s[0] for s in have))} to {iso(max(s[1] for s in have) + 60)}"
            if have
            else ""
        )
        raise _Stop(1, f"no rows of {metric} between {iso(since)} and {iso(until)}{extent}")
    return series


def _write_png(series: List[Any], path: str, title: str) -> None:
    try:
        draw_png(series, path, title)
    except PlotUnavailable as e:
        raise _Stop(1, str(e)) from None
    except OSError as e:
        raise _Stop(1, f"cannot write {path}: {e}") from None
    points = sum(len(s.points) for s in series)
    print(f"wrote {path}: {len(series)} series, {points} points")


def run(args: argparse.Namespace) -> int:
    try:
        _run(args)
    except _Stop as stop:
        print(f"sysops-agent history: {stop}", file=sys.stderr)
        return stop.code
    return 0


def _run(args: argparse.Namespace) -> None:
    from sysops_agent.storage.sqlite_reader import HistoryError, HistoryReader

    since, until, match, step = _window(args, time.time())
    db: str = args.db or _db_from_config(args.config)
    try:
        reader = HistoryReader(db)
    except HistoryError as e:
        raise _Stop(1, str(e)) from None
    try:
        series = _select(reader, db, args.metric, match, since, until, step)
    except HistoryError as e:
        raise _Stop(1, str(e)) from None
    finally:
        reader.close()
    if args.png:
        _write_png(series, args.png, f"{args.metric}  {iso(since)} .. {iso(until)}")
        return
    try:
        if args.json:
            print_json(series, sys.stdout)
        else:
            print_table(series, step, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: stop quietly, and keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _db_from_config(config_path: Optional[str]) -> str:
    from sysops_agent.commands import load_or_exit
    from sysops_agent.storage.config import sqlite_db_path

    loaded = load_or_exit(config_path, quiet_warnings=True)
    return sqlite_db_path(loaded.config.storage, loaded.config.agent.data_dir)
