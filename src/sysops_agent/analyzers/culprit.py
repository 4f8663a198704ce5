"""Name the culprit: a CPU, memory, swap or FD alert carries its top 3 consumers.

The process collector already stores, per tracked process (the ``top_n`` by
RSS plus the ``track`` patterns), ``process_cpu_percent``,
``process_rss_bytes`` and ``process_fd_count``. When an alert on a
host-wide CPU, load, memory, swap or FD metric fires, :func:`name_culprits`
appends the three largest of the matching per-process series at that moment
— "top: postgres (pid 4121) 61% of a core, java (pid 88) 22% of a core" —
from the store, with no extra scan of /proc. Swap names the largest RSS (the
collector has no per-process swap); disk I/O has no per-process data and is
left alone. :func:`top_consumers` is the pure part.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from sysops_agent.model import Alert, AlertState, SeriesKey
from sysops_agent.storage.store import Store
from sysops_agent.units import format_value

#: consumers named in one alert
TOP = 3
#: a process sample older than this (before the alert) is not "at the moment of the alert"
MAX_AGE_SECS = 120.0

#: alert metric prefix -> (per-process metric, words after the value)
SOURCES: Tuple[Tuple[str, str, str], ...] = (
    ("cpu_", "process_cpu_percent", " of a core"),
    ("load_avg_", "process_cpu_percent", " of a core"),
    ("memory_", "process_rss_bytes", " RSS"),
    ("swap_", "process_rss_bytes", " RSS"),
    ("fd_", "process_fd_count", " FDs"),
)


def source_of(metric: str) -> Optional[Tuple[str, str]]:
    for prefix, per_process, suffix in SOURCES:
        if metric.startswith(prefix):
            return per_process, suffix
    return None


def top_consumers(
    per_process: str, suffix: str, values: Sequence[Tuple[SeriesKey, float]], n: int = TOP
) -> str:
    """``postgres (pid 4121) 61.0% of a core, java (pid 88) 22.0% of a core`` (pure)."""
    ranked = sorted((v, k) for k, v in values if v > 0)[::-1][:n]
    return ", ".join(
        f"{k.label('name', '?')} (pid {k.label('pid', '?')}) "
        f"{format_value(per_process, v)}{suffix if per_process != 'process_fd_count' else ''}"
        for v, k in ranked
    )


def name_culprits(alert: Alert, store: Store) -> Alert:
    """``alert`` with its top consumers appended to the message, when it has any."""
    if alert.state is not AlertState.FIRING or any(k == "pid" for k, _ in alert.labels):
        return alert
    source = source_of(alert.metric)
    if source is None:
        return alert
    per_process, suffix = source
    values: List[Tuple[SeriesKey, float]] = []
    for key, buf in store.series_of(per_process):
        point = buf.latest()
        if point is not None and alert.timestamp - point[0] <= MAX_AGE_SECS:
            values.append((key, float(point[1])))
    top = top_consumers(per_process, suffix, values)
    return alert.evolve(message=f"{alert.message}; top: {top}") if top else alert
