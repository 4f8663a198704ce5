"""Human wording for alert messages: what a series is, and its value in its unit.

Messages must explain themselves (``disk / 91.2% full (critical level 90%)``),
so every analyzer words its alerts through these helpers. Values are shown in
their unit by :func:`sysops_agent.units.format_value` (the unit catalog).
"""

from __future__ import annotations

from sysops_agent.model import SeriesKey
from sysops_agent.units import format_value

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


#: per-device metric -> what it measures (after ``disk sda`` / ``interface eth0``)
_DEVICE_SUBJECTS = {
    "disk_read_bytes_per_second": "reads",
    "disk_write_bytes_per_second": "writes",
    "disk_read_ops_per_second": "read operations",
    "disk_write_ops_per_second": "write operations",
    "disk_io_util_percent": "busy time",
    "disk_read_await_seconds": "read latency",
    "disk_write_await_seconds": "write latency",
    "disk_queue_depth": "queue depth",
    "net_rx_bytes_per_second": "received",
    "net_tx_bytes_per_second": "sent",
    "net_rx_packets_per_second": "packets received",
    "net_tx_packets_per_second": "packets sent",
    "net_rx_errors_per_second": "receive errors",
    "net_tx_errors_per_second": "send errors",
    "net_rx_drops_per_second": "receive drops",
    "net_tx_drops_per_second": "send drops",
}


def process_name(key: SeriesKey) -> str:
    """``postgres (pid 4121)`` for per-process series."""
    return f"{key.label('name', '?')} (pid {key.label('pid', '?')})"


def subject(key: SeriesKey) -> str:
    """How a message names a series: ``CPU usage``, ``disk /``, ``disk sda writes``, ``nginx (pid 12) RSS``."""
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
            "process_io_read_bytes_per_second": "disk reads",
            "process_io_write_bytes_per_second": "disk writes",
        }.get(metric, metric)
        return f"{process_name(key)} {what}"
    measured = _DEVICE_SUBJECTS.get(metric)
    if measured is not None:
        if metric.startswith("net_"):
            return f"interface {key.label('interface', key.label('device', '?'))} {measured}"
        return f"disk {key.label('device', '?')} {measured}"
    base = _SUBJECTS.get(metric)
    if base is not None:
        return base
    return str(key)


def gone_phrase(key: SeriesKey) -> str:
    """What vanished, for the resolved notice of a series no longer reported.

    ``pid 4121 (postgres) exited``, ``mount /srv gone``, ``interface eth0 gone``,
    ``device sdb gone``; otherwise ``<subject> no longer reported``.
    """
    pid = key.label("pid")
    if pid:
        return f"pid {pid} ({key.label('name', '?')}) exited"
    mount = key.label("mountpoint")
    if mount:
        return f"mount {mount} gone"
    for label in ("container", "interface", "device"):
        value = key.label(label)
        if value:
            return f"{label} {value} gone"
    return f"{subject(key)} no longer reported"


def value_phrase(key: SeriesKey, value: float) -> str:
    """``91.2% full`` for disk usage, ``95.2%`` otherwise (after the subject)."""
    text = format_value(key.metric, value)
    if key.metric == "disk_usage_percent":
        return f"{text} full"
    if key.metric == "disk_inode_usage_percent":
        return f"{text} used"
    return text
