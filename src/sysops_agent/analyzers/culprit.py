"""Name the culprit: a CPU, memory, swap, FD or disk-I/O alert carries its top 3 consumers.

The process collector already stores, per tracked process (the ``top_n`` by
RSS plus the ``track`` patterns), ``process_cpu_percent``,
``process_rss_bytes``, ``process_fd_count`` and the disk I/O it caused,
``process_io_read_bytes_per_second`` / ``process_io_write_bytes_per_second``.
When an alert on a host-wide CPU, load, memory, swap, FD or disk-I/O metric
fires, :func:`name_culprits` appends the three largest of the matching
per-process series at that moment — "top: postgres (pid 4121) 61% of a core,
java (pid 88) 22% of a core" — from the store, with no extra scan of /proc.

Swap names the largest RSS (the collector has no per-process swap). Disk
I/O follows the alert's direction: ``disk_read_*`` names the readers
("postgres (pid 4121) 12.3 MB/s read"), ``disk_write_*`` the writers
("… written"); utilisation, queue depth and I/O pressure, which have no
direction, rank by read + written ("… read+written"). Disk *usage*
(``disk_usage_percent``, ``disk_free_bytes``, inodes) names nobody: space is
not a process's rate. The processes named are the tracked ones only: a
small process writing hard is named only if it matches ``track_patterns``.
:func:`top_consumers` is the pure part.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from sysops_agent.model import Alert, AlertState, Labels, SeriesKey
from sysops_agent.storage.store import Store
from sysops_agent.units import format_value

#: consumers named in one alert
TOP = 3
#: a process sample older than this (before the alert) is not "at the moment of the alert"
MAX_AGE_SECS = 120.0

IO_READ = "process_io_read_bytes_per_second"
IO_WRITE = "process_io_write_bytes_per_second"

#: alert metric prefix -> (per-process metrics, summed per process; words after the value),
#: checked in order (the first matching prefix wins)
SOURCES: Tuple[Tuple[str, Tuple[str, ...], str], ...] = (
    ("cpu_", ("process_cpu_percent",), " of a core"),
    ("load_avg_", ("process_cpu_percent",), " of a core"),
    ("memory_", ("process_rss_bytes",), " RSS"),
    ("swap_", ("process_rss_bytes",), " RSS"),
    ("fd_", ("process_fd_count",), " FDs"),
    ("disk_read_", (IO_READ,), " read"),
    ("disk_write_", (IO_WRITE,), " written"),
    ("disk_io_", (IO_READ, IO_WRITE), " read+written"),
    ("disk_queue_depth", (IO_READ, IO_WRITE), " read+written"),
    ("pressure_io_", (IO_READ, IO_WRITE), " read+written"),
)


def source_of(metric: str) -> Optional[Tuple[str, str]]:
    """``(per-process metric, words after the value)`` for an alert on ``metric``, or None.

    For sources summing two metrics, the first names the unit.
    """
    found = sources_of(metric)
    return (found[0][0], found[1]) if found else None


def sources_of(metric: str) -> Optional[Tuple[Tuple[str, ...], str]]:
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
    source = sources_of(alert.metric)
    if source is None:
        return alert
    per_process, suffix = source
    totals: Dict[Labels, float] = {}
    for metric in per_process:
        for key, buf in store.series_of(metric):
            point = buf.latest()
            if point is not None and alert.timestamp - point[0] <= MAX_AGE_SECS:
                totals[key.labels] = totals.get(key.labels, 0.0) + float(point[1])
    values: List[Tuple[SeriesKey, float]] = [
        (SeriesKey(per_process[0], labels), v) for labels, v in totals.items()
    ]
    top = top_consumers(per_process[0], suffix, values)
    return alert.evolve(message=f"{alert.message}; top: {top}") if top else alert
