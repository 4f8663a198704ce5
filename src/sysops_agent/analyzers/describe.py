"""Human wording for alert messages: what a series is, and its value in its unit.

Messages must explain themselves (``disk / 91.2% full (critical level 90%)``),
so every analyzer words its alerts through these helpers. Units come from the
metric name's suffix (SPEC §3: ``_percent``, ``_bytes``, ``_per_second`` …).
"""

from __future__ import annotations

from sysops_agent.model import SeriesKey

#: metric name -> how an operator calls it
_SUBJECTS = {
    "cpu_usage_percent": "CPU usage",
    "cpu_user_percent": "CPU user time",
    "cpu_system_percent": "CPU system time",
    "cpu_iowait_percent": "CPU iowait",
    "cpu_steal_percent": "CPU steal time",
    "memory_usage_percent": "memory usage",
    "swap_usage_percent": "swap usage",
    "fd_usage_percent": "file descriptor usage",
}

_BYTE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def fmt_num(x: float) -> str:
    """A level as the user wrote it: ``95``, ``77.6``, ``0.25``."""
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    if abs(x) >= 100:
        return f"{x:.1f}"
    return f"{x:.3g}" if abs(x) < 1 else f"{x:.1f}"


def fmt_bytes(n: float) -> str:
    """Binary-scaled bytes with one decimal: ``2.1 GB``, ``180 MB``."""
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


def fmt_value(metric: str, value: float) -> str:
    """A measured value with its unit, at a precision that reads naturally."""
    if metric.endswith("_percent"):
        return f"{value:.1f}%"
    if metric.endswith("_bytes_per_second"):
        return f"{fmt_bytes(value)}/s"
    if metric.endswith("_bytes"):
        return fmt_bytes(value)
    if metric.endswith("_per_second"):
        return f"{_plain(value)}/s"
    if metric.endswith("_seconds"):
        return f"{_plain(value)} s"
    return _plain(value)


def fmt_level(metric: str, level: float) -> str:
    """A configured level with its unit, without spurious decimals."""
    if metric.endswith("_percent"):
        return f"{fmt_num(level)}%"
    return fmt_value(metric, level)


def _plain(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_duration(secs: float) -> str:
    """``5h10m``, ``42m``, ``3d4h``, ``50s``."""
    s = round(max(secs, 0.0))
    if s < 60:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m" if m else f"{h}h"
    d, h = divmod(h, 24)
    return f"{d}d{h}h" if h else f"{d}d"


def process_name(key: SeriesKey) -> str:
    """``postgres (pid 4121)`` for per-process series."""
    return f"{key.label('name', '?')} (pid {key.label('pid', '?')})"


def subject(key: SeriesKey) -> str:
    """How a message names a series: ``CPU usage``, ``disk /``, ``nginx (pid 12) RSS``."""
    metric = key.metric
    if metric in ("disk_usage_percent", "disk_free_bytes"):
        return f"disk {key.label('mountpoint', key.label('device', '?'))}"
    if metric == "disk_inode_usage_percent":
        return f"disk {key.label('mountpoint', key.label('device', '?'))} inodes"
    if metric == "cpu_core_usage_percent":
        return f"CPU core {key.label('core', '?')} usage"
    if metric.startswith("process_"):
        what = {
            "process_rss_bytes": "RSS",
            "process_fd_count": "open files",
            "process_cpu_percent": "CPU",
            "process_threads": "threads",
        }.get(metric, metric)
        return f"{process_name(key)} {what}"
    base = _SUBJECTS.get(metric)
    if base is not None:
        return base
    return str(key)


def value_phrase(key: SeriesKey, value: float) -> str:
    """``91.2% full`` for disk usage, ``95.2%`` otherwise (after the subject)."""
    text = fmt_value(key.metric, value)
    if key.metric == "disk_usage_percent":
        return f"{text} full"
    if key.metric == "disk_inode_usage_percent":
        return f"{text} used"
    return text
