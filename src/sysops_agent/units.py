"""The one catalog of units of measure: what a metric's name says about its values.

Metric names carry their unit (SPEC §3: ``cpu_usage_percent``,
``memory_used_bytes``, ``net_rx_bytes_per_second``, ``kernel_oom_kills_total``);
a few carry none and are listed by name (``load_avg_1m``, ``fd_allocated``).
:func:`unit_of` resolves a name to its :class:`Unit`, and everything that
depends on the unit reads it from there:

- the analyzer feed drops values that cannot be true (``non_negative``);
- the statistical analyzers ignore changes smaller than ``min_change``;
- alert messages and channels show values with :func:`format_value`,
  configured levels with :func:`format_level`, durations with
  :func:`format_duration`;
- the Prometheus exporter names, scales and types a series from
  ``prom_suffix``, ``prom_scale``, ``prom_type`` and ``prom_help``;
- ``resolution`` is the smallest step worth storing (samples will be stored
  rounded to it).

Adding a unit is one :class:`Unit` entry in :data:`UNITS` (longer suffixes
first) or one line in :data:`NAMED`. This module imports nothing of the agent:
it sits at the bottom of the layers with ``model`` and ``clock``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Dict, Optional, Tuple

COUNTER = "counter"
GAUGE = "gauge"

_BYTE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def round_stored(value: float) -> float:
    """A stored (float32) value as the 7 significant digits it really has: 5.95, not 5.9518094.

    Float32 keeps 24 bits of mantissa (~7.2 decimal digits): the digits after
    the 7th are conversion noise. Rounded values also let SQLite store
    integral values (byte counts) as small integers.
    """
    return float(f"{value:.7g}")


def format_number(value: float) -> str:
    """A number without float noise: ``95``, ``2.35``, ``0.0125``, ``12,346``."""
    if value != value:  # NaN
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def format_bytes(n: float) -> str:
    """Binary-scaled bytes, one decimal below 100: ``512 B``, ``2.1 GB``, ``180 MB``."""
    sign = "-" if n < 0 else ""
    n = abs(n)
    unit = 0
    while n >= 1024 and unit < len(_BYTE_UNITS) - 1:
        n /= 1024
        unit += 1
    if unit == 0:
        return f"{sign}{n:.0f} B"
    text = f"{n:.1f}" if n < 100 else f"{n:.0f}"
    return f"{sign}{text} {_BYTE_UNITS[unit]}"


def format_duration(seconds: Optional[float]) -> str:
    """A duration the way an operator says it; ``-`` when unknown.

    ``0.25s``, ``1s``, ``9.4s`` (2 significant digits below 10 s), ``42s``,
    ``2m05s`` (seconds shown below 10 minutes), ``42m``, ``5h10m``, ``5h``
    (hours up to two days), ``3d4h``, ``3d``. Negative durations count as 0.
    """
    if seconds is None:
        return "-"
    secs = max(seconds, 0.0)
    if secs < 0.0005:
        return "0s"
    if secs < 9.5:
        return f"{secs:.2g}s"
    s = round(secs)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 10:
        return f"{m}m{s:02d}s" if s else f"{m}m"
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m" if m else f"{h}h"
    d, h = divmod(h, 24)
    return f"{d}d{h}h" if h else f"{d}d"


def _percent(value: float) -> str:
    return f"{value:.1f}%"


def _bytes_per_second(value: float) -> str:
    return f"{format_bytes(value)}/s"


def _per_second(value: float) -> str:
    return f"{format_number(value)}/s"


def _seconds(value: float) -> str:
    return "-" + format_duration(-value) if value < 0 else format_duration(value)


def _level_num(level: float) -> str:
    """A level as the user wrote it: ``95``, ``77.6``, ``0.25``."""
    if level == int(level) and abs(level) < 1e15:
        return str(int(level))
    if abs(level) >= 100:
        return f"{level:.1f}"
    return f"{level:.3g}" if abs(level) < 1 else f"{level:.1f}"


@dataclass(frozen=True)
class Unit:
    """One unit of measure and everything the agent does differently because of it."""

    #: short name: ``percent``, ``bytes``, ``bytes_per_second`` …
    name: str
    #: the metric-name suffix that means this unit (``_percent``); "" for units
    #: known only from :data:`NAMED` metric names
    suffix: str
    #: a negative value is impossible (a collector bug or a corrupt input line)
    non_negative: bool
    #: the smallest absolute change worth a statistical alert (0: only the
    #: statistics decide). The relative deviation divides by
    #: ``max(|ema|, min_change / deviation)``, so near zero a change must be at
    #: least this to count: 0.2% -> 0.9% iowait, load 0.01 -> 0.3 or
    #: 2 -> 40 KB/s of traffic on an idle box are not "350%" jumps.
    min_change: float
    #: the smallest meaningful stored step (None: unknown, keep every digit).
    #: A percentage computed from jiffies or a byte rate has far less real
    #: resolution than float32 keeps; samples will be stored rounded to it.
    resolution: Optional[float]
    #: the exported name's suffix in place of :attr:`suffix` (``_ratio`` for ``_percent``)
    prom_suffix: str
    #: the largest possible value (None: no bound); ``percent`` is at most 100
    maximum: Optional[float] = None
    #: multiply the stored value by this for Prometheus
    prom_scale: float = 1.0
    #: ``gauge`` or ``counter``
    prom_type: str = GAUGE
    #: unit text for the HELP line ("" adds none)
    prom_help: str = ""
    #: human text for a value in this unit
    formatter: Callable[[float], str] = field(default=format_number, repr=False, compare=False)
    #: human text for a configured level (None: like a value)
    level_formatter: Optional[Callable[[float], str]] = field(
        default=None, repr=False, compare=False
    )

    def format(self, value: float) -> str:
        """``91.2%``, ``1.7 GB``, ``7.5 GB/s``, ``120/s``, ``3h05m``, ``2.35``."""
        return self.formatter(value)

    def format_level(self, level: float) -> str:
        """A configured level, without spurious decimals: ``90%`` (not ``90.0%``)."""
        return (self.level_formatter or self.formatter)(level)


_MIB = 1024.0 * 1024.0

#: Percentages are stored at 0.05 points (largest error 0.025): the finest step
#: their sources have that the agent uses. CPU from jiffies (USER_HZ 100) over
#: 10 s is 0.1 point of one core, 0.05 on two; the agent shows one decimal
#: (91.2%), thresholds are whole percents, ``min_change`` is 5 points and the
#: trend analyzer forecasts growth of 2 points an hour and more. Memory and
#: disk shares are finer at the source, but nothing reads them finer.
PERCENT_RESOLUTION = 0.05

PERCENT = Unit(
    "percent",
    "_percent",
    non_negative=True,
    min_change=5.0,  # percentage points
    resolution=PERCENT_RESOLUTION,
    prom_suffix="_ratio",
    maximum=100.0,
    prom_scale=0.01,
    prom_help="ratio 0-1 (the agent's percentage / 100)",
    formatter=_percent,
    level_formatter=lambda level: f"{_level_num(level)}%",
)
# The others positionally: Unit(name, suffix, non_negative, min_change, resolution,
# prom_suffix, ...). Rates: resolution 0.001 keeps one event in 1000 s; 1 error
# or drop a second matters.
ERRORS_PER_SECOND = Unit(
    "errors_per_second", "_errors_per_second", True, 1.0, 0.001, "_errors_per_second",
    prom_help="per second", formatter=_per_second,
)  # fmt: skip
DROPS_PER_SECOND = Unit(
    "drops_per_second", "_drops_per_second", True, 1.0, 0.001, "_drops_per_second",
    prom_help="per second", formatter=_per_second,
)  # fmt: skip
BYTES_PER_SECOND = Unit(
    "bytes_per_second", "_bytes_per_second", True, _MIB, 1.0, "_bytes_per_second",
    prom_help="bytes per second", formatter=_bytes_per_second,
)  # fmt: skip
#: time stalled per second of wall time (PSI's ``total`` counters as rates): 0..1 per resource
SECONDS_PER_SECOND = Unit(
    "seconds_per_second", "_seconds_per_second", True, 0.05, 0.001, "_seconds_per_second",
    prom_help="seconds per second", formatter=lambda v: f"{v:.3f} s/s",
)  # fmt: skip
#: a link's speed: 1 Mbit/s is the least change that matters
BITS_PER_SECOND = Unit(
    "bits_per_second", "_bits_per_second", True, 1e6, 1.0, "_bits_per_second",
    prom_help="bits per second", formatter=lambda v: f"{format_number(v / 1e6)} Mbit/s",
)  # fmt: skip
#: operations, packets: 50/s is the least change that matters
PER_SECOND = Unit(
    "per_second", "_per_second", True, 50.0, 0.001, "_per_second",
    prom_help="per second", formatter=_per_second,
)  # fmt: skip
BYTES = Unit(
    "bytes", "_bytes", True, 64.0 * _MIB, 1.0, "_bytes",
    prom_help="bytes", formatter=format_bytes,
)  # fmt: skip
COUNT = Unit("count", "_count", True, 10.0, 1.0, "_count")
SECONDS = Unit(
    "seconds", "_seconds", True, 1.0, 0.001, "_seconds",
    prom_help="seconds", formatter=_seconds,
)  # fmt: skip
#: counters are never judged statistically (``rules.py`` excludes them): min_change 0
TOTAL = Unit(
    "total", "_total", True, 0.0, 1.0, "_total",
    prom_type=COUNTER, prom_help="count since the agent started",
)  # fmt: skip
#: a percentage with no upper bound: percent of ONE core (a process busy on 4 cores
#: shows 400), or a share of a device's own limit (a sensor at 101 % of its maximum)
CORE_PERCENT = Unit(
    "core_percent",
    "_percent",
    non_negative=True,
    min_change=5.0,
    resolution=PERCENT_RESOLUTION,  # a process's jiffy is 0.033 point at its 30 s
    prom_suffix="_ratio",
    prom_scale=0.01,
    prom_help="ratio 0-1 (the agent's percentage / 100)",
    formatter=_percent,
    level_formatter=lambda level: f"{_level_num(level)}%",
)
#: degrees Celsius (hwmon, GPUs): below zero happens (an outdoor box), 0.1 is the sensors' step
CELSIUS = Unit(
    "celsius", "_celsius", False, 5.0, 0.1, "_celsius",
    prom_help="degrees Celsius", formatter=lambda v: f"{v:.1f} °C",
)  # fmt: skip
#: power draw (GPUs)
WATTS = Unit(
    "watts", "_watts", True, 10.0, 0.1, "_watts",
    prom_help="watts", formatter=lambda v: f"{format_number(v)} W",
)  # fmt: skip
#: a yes/no state: a link up, an array degraded, a GPU throttling (1 is yes)
STATE = Unit("state", "", True, 1.0, 1.0, "", maximum=1.0)
#: /proc/loadavg prints two decimals
LOAD = Unit("load", "", True, 1.0, 0.01, "")
#: recorded CSV files and the like: anything goes, only the statistics decide
UNKNOWN = Unit("unknown", "", False, 0.0, None, "")

#: units recognised by the metric name's suffix, checked in order: the first
#: matching suffix wins, so longer suffixes come first
UNITS: Tuple[Unit, ...] = (
    TOTAL,
    CELSIUS,
    WATTS,
    PERCENT,
    ERRORS_PER_SECOND,
    DROPS_PER_SECOND,
    BYTES_PER_SECOND,
    SECONDS_PER_SECOND,
    BITS_PER_SECOND,
    PER_SECOND,
    BYTES,
    COUNT,
    SECONDS,
)

#: metrics whose name has no unit suffix (SPEC §3 and the agent's own)
NAMED: Dict[str, Unit] = {
    "load_avg_1m": LOAD,
    "load_avg_5m": LOAD,
    "load_avg_15m": LOAD,
    "process_cpu_percent": CORE_PERCENT,
    "cgroup_cpu_usage_percent": CORE_PERCENT,
    # a temperature as a share of the device's own limit: above 100 is the alarm itself
    "hardware_temperature_max_percent": CORE_PERCENT,
    "hardware_temperature_crit_percent": CORE_PERCENT,
    "fd_allocated": COUNT,
    "fd_max": COUNT,
    "process_threads": COUNT,
    "agent_sqlite_pending_rows": COUNT,
    "agent_store_series": COUNT,
    # the issue-16 collectors' counts and states (no unit suffix in their names)
    "conntrack_entries": COUNT,
    "conntrack_max": COUNT,
    "tcp_sockets_inuse": COUNT,
    "tcp_sockets_orphan": COUNT,
    "tcp_sockets_time_wait": COUNT,
    "cgroup_pids": COUNT,
    "cgroup_pids_max": COUNT,
    "cgroup_memory_oom_kills": COUNT,
    "edac_uncorrectable_errors": COUNT,
    "md_disks": COUNT,
    "md_disks_active": COUNT,
    "md_disks_failed": COUNT,
    "disk_queue_depth": LOAD,  # requests in flight, averaged: like a load average
    "net_link_up": STATE,
    "md_degraded": STATE,
    "gpu_thermal_slowdown": STATE,
    "agent_alerts_suppressed": COUNT,
}


@lru_cache(maxsize=4096)
def unit_of(metric: str) -> Unit:
    """The unit of ``metric``: by name (:data:`NAMED`), else by suffix, else :data:`UNKNOWN`.

    A bare suffix is not a unit: ``_percent`` alone is unknown.
    """
    named = NAMED.get(metric)
    if named is not None:
        return named
    for unit in UNITS:
        if metric.endswith(unit.suffix) and len(metric) > len(unit.suffix):
            return unit
    return UNKNOWN


def format_value(metric: str, value: float) -> str:
    """A measured value of ``metric`` with its unit: ``91.2%``, ``1.7 GB``, ``120/s``."""
    return unit_of(metric).format(value)


def format_level(metric: str, level: float) -> str:
    """A configured level of ``metric`` with its unit: ``90%``, ``1.0 GB``."""
    return unit_of(metric).format_level(level)


#: the largest finite float32 (the ring buffers' value type): beyond it a value becomes inf
FLOAT32_MAX = 3.4028234663852886e38
#: the ring buffers keep timestamps as unsigned 32-bit seconds (until 2106)
TS_MAX = 2**32 - 1
#: slack for a percentage computed from deltas (100.00000001 is 100)
_PERCENT_SLACK = 1e-6


def is_impossible(metric: str, value: float) -> bool:
    """A value no healthy collector can produce for ``metric``: negative or above its maximum."""
    unit = unit_of(metric)
    if value < 0:
        return unit.non_negative
    return unit.maximum is not None and value > unit.maximum * (1 + _PERCENT_SLACK)


def sample_problem(metric: str, ts: float, value: float) -> Optional[str]:
    """Why a sample cannot be stored, or None: the one range check of every input path.

    The store refuses (and counts) such samples from collectors; ``replay``
    reports them with their line numbers.
    """
    if not math.isfinite(value):
        return f"value {value!r} is not a finite number"
    if abs(value) > FLOAT32_MAX:
        return f"value {value:g} is beyond the float32 range the store keeps"
    if not 0 <= ts <= TS_MAX:
        return f"timestamp {ts:.0f} is not unix seconds between 1970 and 2106"
    if is_impossible(metric, value):
        unit = unit_of(metric)
        bound = "negative" if value < 0 else f"above {format_number(unit.maximum or 0)}"
        return f"value {value:g} is impossible for {metric} ({unit.name} cannot be {bound})"
    return None
