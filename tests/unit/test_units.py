"""The unit catalog: every metric the agent produces has the unit its name says.

One row per metric of SPEC §3 and of the agent's own health: the unit
:func:`unit_of` resolves, what a value looks like in a message, and the name,
type and scale Prometheus sees. A second check walks the collectors' captured
outputs (``tests/fixtures/proc/*/expected.json``) and the log watcher's
counters, so a new metric without a known unit fails here.
"""

from __future__ import annotations

import json
import math
from typing import Optional, Set

import pytest

from sysops_agent import units
from sysops_agent.exporters.prometheus import export_name
from sysops_agent.logwatch.patterns import COUNTERS
from sysops_agent.units import (
    format_bytes,
    format_duration,
    format_level,
    format_number,
    format_value,
    is_impossible,
    round_stored,
    unit_of,
)
from tests.support.paths import FIXTURES as PATHS_FIXTURES

FIXTURES = PATHS_FIXTURES / "proc"

# (metric, unit, a value, its text, exported name)
TABLE = [
    # SPEC §3: CPU
    ("cpu_usage_percent", "percent", 91.24, "91.2%", "sysops_cpu_usage_ratio"),
    ("cpu_user_percent", "percent", 5.0, "5.0%", "sysops_cpu_user_ratio"),
    ("cpu_system_percent", "percent", 0.04, "0.0%", "sysops_cpu_system_ratio"),
    ("cpu_iowait_percent", "percent", 41.04, "41.0%", "sysops_cpu_iowait_ratio"),
    ("cpu_steal_percent", "percent", 100.0, "100.0%", "sysops_cpu_steal_ratio"),
    ("cpu_core_usage_percent", "percent", 12.35, "12.3%", "sysops_cpu_core_usage_ratio"),
    ("load_avg_1m", "load", 5.95, "5.95", "sysops_load_avg_1m"),
    ("load_avg_5m", "load", 2.0, "2", "sysops_load_avg_5m"),
    ("load_avg_15m", "load", 0.25, "0.25", "sysops_load_avg_15m"),
    # memory
    ("memory_usage_percent", "percent", 77.61, "77.6%", "sysops_memory_usage_ratio"),
    ("memory_used_bytes", "bytes", 1.7 * 2**30, "1.7 GB", "sysops_memory_used_bytes"),
    ("memory_available_bytes", "bytes", 512.0, "512 B", "sysops_memory_available_bytes"),
    ("memory_total_bytes", "bytes", 24 * 2**30, "24.0 GB", "sysops_memory_total_bytes"),
    ("swap_usage_percent", "percent", 0.0, "0.0%", "sysops_swap_usage_ratio"),
    # disk I/O
    (
        "disk_read_bytes_per_second",
        "bytes_per_second",
        7.5 * 2**30,
        "7.5 GB/s",
        "sysops_disk_read_bytes_per_second",
    ),
    (
        "disk_write_bytes_per_second",
        "bytes_per_second",
        180 * 2**20,
        "180 MB/s",
        "sysops_disk_write_bytes_per_second",
    ),
    ("disk_read_ops_per_second", "per_second", 120.0, "120/s", "sysops_disk_read_ops_per_second"),
    (
        "disk_write_ops_per_second",
        "per_second",
        1234.5,
        "1,234/s",
        "sysops_disk_write_ops_per_second",
    ),
    ("disk_io_util_percent", "percent", 99.95, "100.0%", "sysops_disk_io_util_ratio"),
    # disk usage
    ("disk_usage_percent", "percent", 91.2, "91.2%", "sysops_disk_usage_ratio"),
    ("disk_free_bytes", "bytes", 2.1 * 2**30, "2.1 GB", "sysops_disk_free_bytes"),
    ("disk_inode_usage_percent", "percent", 3.0, "3.0%", "sysops_disk_inode_usage_ratio"),
    # network
    (
        "net_rx_bytes_per_second",
        "bytes_per_second",
        40 * 1024.0,
        "40.0 KB/s",
        "sysops_net_rx_bytes_per_second",
    ),
    (
        "net_tx_bytes_per_second",
        "bytes_per_second",
        0.0,
        "0 B/s",
        "sysops_net_tx_bytes_per_second",
    ),
    ("net_rx_packets_per_second", "per_second", 0.5, "0.5/s", "sysops_net_rx_packets_per_second"),
    ("net_tx_packets_per_second", "per_second", 50.0, "50/s", "sysops_net_tx_packets_per_second"),
    (
        "net_rx_errors_per_second",
        "errors_per_second",
        0.1,
        "0.1/s",
        "sysops_net_rx_errors_per_second",
    ),
    (
        "net_tx_errors_per_second",
        "errors_per_second",
        2.0,
        "2/s",
        "sysops_net_tx_errors_per_second",
    ),
    ("net_rx_drops_per_second", "drops_per_second", 3.0, "3/s", "sysops_net_rx_drops_per_second"),
    (
        "net_tx_drops_per_second",
        "drops_per_second",
        0.0125,
        "0.0125/s",
        "sysops_net_tx_drops_per_second",
    ),
    # processes
    ("process_count", "count", 312.0, "312", "sysops_processes"),
    ("process_rss_bytes", "bytes", 1.7 * 2**30, "1.7 GB", "sysops_process_rss_bytes"),
    ("process_cpu_percent", "core_percent", 250.0, "250.0%", "sysops_process_cpu_ratio"),
    ("process_fd_count", "count", 1024.0, "1024", "sysops_process_open_fds"),
    ("process_threads", "count", 17.0, "17", "sysops_process_threads"),
    (
        "process_io_read_bytes_per_second",
        "bytes_per_second",
        12.3e6,
        "11.7 MB/s",
        "sysops_process_io_read_bytes_per_second",
    ),
    (
        "process_io_write_bytes_per_second",
        "bytes_per_second",
        0.0,
        "0 B/s",
        "sysops_process_io_write_bytes_per_second",
    ),
    # file descriptors, uptime
    ("fd_allocated", "count", 12345.0, "12345", "sysops_fd_allocated"),
    ("fd_max", "count", 1048576.0, "1048576", "sysops_fd_max"),
    ("fd_usage_percent", "percent", 0.01, "0.0%", "sysops_fd_usage_ratio"),
    ("uptime_seconds", "seconds", 3 * 3600 + 5 * 60 + 7, "3h05m", "sysops_uptime_seconds"),
    # the agent's own health
    ("agent_samples_dropped_total", "total", 3.0, "3", "sysops_agent_samples_dropped_total"),
    (
        "agent_collect_duration_seconds",
        "seconds",
        0.0123,
        "0.012s",
        "sysops_agent_collect_duration_seconds",
    ),
    ("agent_alerts_sent_total", "total", 12.0, "12", "sysops_agent_alerts_sent_total"),
    ("agent_alerts_failed_total", "total", 0.0, "0", "sysops_agent_alerts_failed_total"),
    ("agent_alerts_dropped_total", "total", 1.0, "1", "sysops_agent_alerts_dropped_total"),
    ("agent_rss_bytes", "bytes", 21.2 * 2**20, "21.2 MB", "sysops_agent_rss_bytes"),
    (
        "agent_sqlite_write_failures_total",
        "total",
        2.0,
        "2",
        "sysops_agent_sqlite_write_failures_total",
    ),
    ("agent_sqlite_pending_rows", "count", 40.0, "40", "sysops_agent_sqlite_pending_rows"),
    ("agent_alerts_suppressed", "count", 7.0, "7", "sysops_agent_alerts_suppressed"),
    # the log watcher's counters
    ("kernel_oom_kills_total", "total", 1.0, "1", "sysops_kernel_oom_kills_total"),
    ("kernel_io_errors_total", "total", 501.0, "501", "sysops_kernel_io_errors_total"),
    ("kernel_fs_errors_total", "total", 0.0, "0", "sysops_kernel_fs_errors_total"),
    ("kernel_hung_tasks_total", "total", 3.0, "3", "sysops_kernel_hung_tasks_total"),
    ("kernel_segfaults_total", "total", 2.0, "2", "sysops_kernel_segfaults_total"),
    (
        "kernel_hardware_errors_total",
        "total",
        1.0,
        "1",
        "sysops_kernel_hardware_errors_total",
    ),
    # no unit: recorded CSV series, log alerts, test alerts
    ("requests", "unknown", 1.5e9, "1500000000", "sysops_requests"),
    ("log_oom_kill", "unknown", 500.0, "500", "sysops_log_oom_kill"),
    ("latency_ms", "unknown", 95.456, "95.5", "sysops_latency_ms"),
    # the issue-16 collectors (pressure, netstack, disk latency, cgroups, hardware)
    ("cgroup_cpu_throttled_percent", "percent", 42.5, "42.5%", "sysops_cgroup_cpu_throttled_ratio"),
    ("cgroup_cpu_usage_percent", "core_percent", 150.0, "150.0%", "sysops_cgroup_cpu_usage_ratio"),
    (
        "cgroup_io_read_bytes_per_second",
        "bytes_per_second",
        3145728.0,
        "3.0 MB/s",
        "sysops_cgroup_io_read_bytes_per_second",
    ),
    (
        "cgroup_io_write_bytes_per_second",
        "bytes_per_second",
        3145728.0,
        "3.0 MB/s",
        "sysops_cgroup_io_write_bytes_per_second",
    ),
    ("cgroup_memory_bytes", "bytes", 2147483648.0, "2.0 GB", "sysops_cgroup_memory_bytes"),
    (
        "cgroup_memory_limit_bytes",
        "bytes",
        2147483648.0,
        "2.0 GB",
        "sysops_cgroup_memory_limit_bytes",
    ),
    ("cgroup_memory_oom_kills", "count", 12.0, "12", "sysops_cgroup_memory_oom_kills"),
    ("cgroup_memory_oom_kills_total", "total", 7.0, "7", "sysops_cgroup_memory_oom_kills_total"),
    ("cgroup_memory_usage_percent", "percent", 42.5, "42.5%", "sysops_cgroup_memory_usage_ratio"),
    ("cgroup_pids", "count", 12.0, "12", "sysops_cgroup_pids"),
    ("cgroup_pids_max", "count", 12.0, "12", "sysops_cgroup_pids_max"),
    (
        "cgroup_pressure_memory_full_percent",
        "percent",
        42.5,
        "42.5%",
        "sysops_cgroup_pressure_memory_full_ratio",
    ),
    (
        "cgroup_pressure_memory_some_percent",
        "percent",
        42.5,
        "42.5%",
        "sysops_cgroup_pressure_memory_some_ratio",
    ),
    ("conntrack_entries", "count", 12.0, "12", "sysops_conntrack_entries"),
    ("conntrack_max", "count", 12.0, "12", "sysops_conntrack_max"),
    ("conntrack_usage_percent", "percent", 42.5, "42.5%", "sysops_conntrack_usage_ratio"),
    ("disk_queue_depth", "load", 1.75, "1.75", "sysops_disk_queue_depth"),
    ("disk_read_await_seconds", "seconds", 0.004, "0.004s", "sysops_disk_read_await_seconds"),
    ("disk_write_await_seconds", "seconds", 0.004, "0.004s", "sysops_disk_write_await_seconds"),
    (
        "edac_correctable_errors_per_second",
        "errors_per_second",
        0.5,
        "0.5/s",
        "sysops_edac_correctable_errors_per_second",
    ),
    ("edac_correctable_errors_total", "total", 7.0, "7", "sysops_edac_correctable_errors_total"),
    ("edac_uncorrectable_errors", "count", 12.0, "12", "sysops_edac_uncorrectable_errors"),
    (
        "edac_uncorrectable_errors_total",
        "total",
        7.0,
        "7",
        "sysops_edac_uncorrectable_errors_total",
    ),
    (
        "hardware_temperature_celsius",
        "celsius",
        71.5,
        "71.5 °C",
        "sysops_hardware_temperature_celsius",
    ),
    (
        "hardware_temperature_crit_percent",
        "core_percent",
        150.0,
        "150.0%",
        "sysops_hardware_temperature_crit_ratio",
    ),
    (
        "hardware_temperature_max_percent",
        "core_percent",
        150.0,
        "150.0%",
        "sysops_hardware_temperature_max_ratio",
    ),
    ("md_degraded", "state", 1.0, "1", "sysops_md_degraded"),
    ("md_disks", "count", 12.0, "12", "sysops_md_disks"),
    ("md_disks_active", "count", 12.0, "12", "sysops_md_disks_active"),
    ("md_disks_failed", "count", 12.0, "12", "sysops_md_disks_failed"),
    ("net_link_up", "state", 1.0, "1", "sysops_net_link_up"),
    (
        "net_speed_bits_per_second",
        "bits_per_second",
        1000000000.0,
        "1000 Mbit/s",
        "sysops_net_speed_bits_per_second",
    ),
    ("pressure_cpu_full_percent", "percent", 42.5, "42.5%", "sysops_pressure_cpu_full_ratio"),
    (
        "pressure_cpu_full_stall_seconds_per_second",
        "seconds_per_second",
        0.125,
        "0.125 s/s",
        "sysops_pressure_cpu_full_stall_seconds_per_second",
    ),
    ("pressure_cpu_some_percent", "percent", 42.5, "42.5%", "sysops_pressure_cpu_some_ratio"),
    (
        "pressure_cpu_some_stall_seconds_per_second",
        "seconds_per_second",
        0.125,
        "0.125 s/s",
        "sysops_pressure_cpu_some_stall_seconds_per_second",
    ),
    ("pressure_io_full_percent", "percent", 42.5, "42.5%", "sysops_pressure_io_full_ratio"),
    (
        "pressure_io_full_stall_seconds_per_second",
        "seconds_per_second",
        0.125,
        "0.125 s/s",
        "sysops_pressure_io_full_stall_seconds_per_second",
    ),
    ("pressure_io_some_percent", "percent", 42.5, "42.5%", "sysops_pressure_io_some_ratio"),
    (
        "pressure_io_some_stall_seconds_per_second",
        "seconds_per_second",
        0.125,
        "0.125 s/s",
        "sysops_pressure_io_some_stall_seconds_per_second",
    ),
    ("pressure_memory_full_percent", "percent", 42.5, "42.5%", "sysops_pressure_memory_full_ratio"),
    (
        "pressure_memory_full_stall_seconds_per_second",
        "seconds_per_second",
        0.125,
        "0.125 s/s",
        "sysops_pressure_memory_full_stall_seconds_per_second",
    ),
    ("pressure_memory_some_percent", "percent", 42.5, "42.5%", "sysops_pressure_memory_some_ratio"),
    (
        "pressure_memory_some_stall_seconds_per_second",
        "seconds_per_second",
        0.125,
        "0.125 s/s",
        "sysops_pressure_memory_some_stall_seconds_per_second",
    ),
    (
        "tcp_listen_drops_per_second",
        "drops_per_second",
        2.0,
        "2/s",
        "sysops_tcp_listen_drops_per_second",
    ),
    (
        "tcp_listen_overflows_per_second",
        "per_second",
        12.5,
        "12.5/s",
        "sysops_tcp_listen_overflows_per_second",
    ),
    ("tcp_retransmit_percent", "percent", 42.5, "42.5%", "sysops_tcp_retransmit_ratio"),
    (
        "tcp_retransmits_per_second",
        "per_second",
        12.5,
        "12.5/s",
        "sysops_tcp_retransmits_per_second",
    ),
    ("tcp_sockets_inuse", "count", 12.0, "12", "sysops_tcp_sockets_inuse"),
    ("tcp_sockets_orphan", "count", 12.0, "12", "sysops_tcp_sockets_orphan"),
    ("tcp_sockets_time_wait", "count", 12.0, "12", "sysops_tcp_sockets_time_wait"),
    (
        "udp_buffer_errors_per_second",
        "errors_per_second",
        0.5,
        "0.5/s",
        "sysops_udp_buffer_errors_per_second",
    ),
    (
        "udp_receive_errors_per_second",
        "errors_per_second",
        0.5,
        "0.5/s",
        "sysops_udp_receive_errors_per_second",
    ),
    ("gpu_power_watts", "watts", 250.0, "250 W", "sysops_gpu_power_watts"),
    ("gpu_temperature_celsius", "celsius", 83.0, "83.0 °C", "sysops_gpu_temperature_celsius"),
    (
        "gpu_process_memory_bytes",
        "bytes",
        2147483648.0,
        "2.0 GB",
        "sysops_gpu_process_memory_bytes",
    ),
]

#: (unit, non_negative, min_change, resolution, Prometheus type, scale)
UNIT_FACTS = {
    "percent": (True, 5.0, 0.05, "gauge", 0.01),
    "core_percent": (True, 5.0, 0.05, "gauge", 0.01),
    "celsius": (False, 5.0, 0.1, "gauge", 1.0),
    "watts": (True, 10.0, 0.1, "gauge", 1.0),
    "state": (True, 1.0, 1.0, "gauge", 1.0),
    "seconds_per_second": (True, 0.05, 0.001, "gauge", 1.0),
    "bits_per_second": (True, 1e6, 1.0, "gauge", 1.0),
    "bytes": (True, 64.0 * 2**20, 1.0, "gauge", 1.0),
    "bytes_per_second": (True, 2.0**20, 1.0, "gauge", 1.0),
    "per_second": (True, 50.0, 0.001, "gauge", 1.0),
    "errors_per_second": (True, 1.0, 0.001, "gauge", 1.0),
    "drops_per_second": (True, 1.0, 0.001, "gauge", 1.0),
    "count": (True, 10.0, 1.0, "gauge", 1.0),
    "seconds": (True, 1.0, 0.001, "gauge", 1.0),
    "total": (True, 0.0, 1.0, "counter", 1.0),
    "load": (True, 1.0, 0.01, "gauge", 1.0),
    "unknown": (False, 0.0, None, "gauge", 1.0),
}


@pytest.mark.parametrize(("metric", "unit", "value", "text", "exported"), TABLE)
def test_unit_table(metric: str, unit: str, value: float, text: str, exported: str) -> None:
    u = unit_of(metric)
    assert u.name == unit
    non_negative, change, resolution, kind, scale = UNIT_FACTS[unit]
    assert (u.non_negative, u.min_change, u.resolution) == (non_negative, change, resolution)
    assert format_value(metric, value) == text
    assert is_impossible(metric, -1.0) is non_negative
    assert not is_impossible(metric, 0.0)
    e = export_name(metric)
    assert (e.name, e.kind, e.scale) == (exported, kind, scale)
    assert (u.prom_type, u.prom_scale) == (kind, scale)


def test_every_unit_has_its_facts_and_a_row() -> None:
    catalog = {u.name for u in units.UNITS} | {u.name for u in units.NAMED.values()}
    catalog.add(units.UNKNOWN.name)
    assert catalog == set(UNIT_FACTS)
    assert {row[1] for row in TABLE} == set(UNIT_FACTS)


def test_longer_suffixes_come_first() -> None:
    """A suffix listed after one it ends with could never match."""
    seen: list[str] = []
    for u in units.UNITS:
        assert u.suffix, u.name
        assert not any(u.suffix.endswith(s) for s in seen), u.name
        seen.append(u.suffix)


def _collector_metrics() -> Set[str]:
    names: Set[str] = set()
    for path in FIXTURES.glob("*/expected.json"):
        for step in json.loads(path.read_text()).get("steps", []):
            names.update(row[0] for row in step.get("samples", []))
    return names


def test_every_produced_metric_is_in_the_table_with_a_known_unit() -> None:
    produced = _collector_metrics() | set(COUNTERS)
    assert len(produced) > 40  # the fixtures were found
    in_table = {row[0] for row in TABLE}
    assert sorted(produced - in_table) == []
    assert [m for m in produced if unit_of(m) is units.UNKNOWN] == []


@pytest.mark.parametrize("metric", ["_percent", "_total", "percent", "total", "cpu_percentile"])
def test_a_bare_or_partial_suffix_is_no_unit(metric: str) -> None:
    assert unit_of(metric) is units.UNKNOWN


@pytest.mark.parametrize(
    ("metric", "level", "text"),
    [
        ("cpu_usage_percent", 90.0, "90%"),
        ("cpu_usage_percent", 77.6, "77.6%"),
        ("cpu_usage_percent", 0.25, "0.25%"),
        ("disk_free_bytes", 2.0**30, "1.0 GB"),
        ("load_avg_1m", 4.0, "4"),
        ("agent_collect_duration_seconds", 0.5, "0.5s"),
    ],
)
def test_format_level(metric: str, level: float, text: str) -> None:
    assert format_level(metric, level) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (-5.0, "0s"),
        (0.0, "0s"),
        (0.0001, "0s"),
        (0.25, "0.25s"),
        (0.998, "1s"),
        (5.0, "5s"),
        (9.4, "9.4s"),
        (9.6, "10s"),
        (29.4, "29s"),
        (59.6, "1m"),
        (125.0, "2m05s"),
        (600.0, "10m"),
        (2537.0, "42m"),
        (3600.0, "1h"),
        (3725.0, "1h02m"),
        (5 * 3600 + 600.0, "5h10m"),
        (47 * 3600 + 59 * 60.0, "47h59m"),
        (48 * 3600.0, "2d"),
        (3 * 86400 + 4 * 3600.0, "3d4h"),
    ],
)
def test_format_duration(seconds: Optional[float], text: str) -> None:
    assert format_duration(seconds) == text


def test_negative_seconds_keep_their_sign() -> None:
    assert format_value("uptime_seconds", -125.0) == "-2m05s"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (95.0, "95"),
        (97.3, "97.3"),
        (95.456, "95.5"),
        (0.0012, "0.0012"),
        (12345.678, "12,346"),
        (1.5e9, "1500000000"),
        (-2.5, "-2.5"),
        (math.nan, "NaN"),
    ],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0.0, "0 B"),
        (1023.0, "1023 B"),
        (1024.0, "1.0 KB"),
        (150 * 2**20, "150 MB"),
        (-(2**31), "-2.0 GB"),
    ],
)
def test_format_bytes(n: float, text: str) -> None:
    assert format_bytes(n) == text


@pytest.mark.parametrize(
    ("value", "rounded"),
    [(5.9518094, 5.951809), (1.0, 1.0), (123456789.0, 123456800.0), (0.1 + 0.2, 0.3)],
)
def test_round_stored_keeps_the_float32_digits(value: float, rounded: float) -> None:
    assert round_stored(value) == rounded


@pytest.mark.parametrize(
    ("metric", "ts", "value", "reason"),
    [
        ("memory_usage_percent", 1e9, 50.0, None),
        ("memory_usage_percent", 1e9, 100.0000001, None),  # rounding of a computed share
        ("fd_usage_percent", 1e9, 500.0, "impossible for fd_usage_percent"),  # garbled file-nr
        ("fd_allocated", 1e9, -5.0, "impossible for fd_allocated (count cannot be negative)"),
        ("process_cpu_percent", 1e9, 400.0, None),  # 4 cores busy
        ("nab_value", 1e9, -3.0, None),  # unknown unit: anything goes
        ("x", 1e9, 4e38, "beyond the float32 range"),
        ("x", 1e9, float("inf"), "not a finite number"),
        ("x", 1.7e12, 1.0, "not unix seconds"),  # milliseconds
        ("x", 253402300799.0, 1.0, "not unix seconds"),  # 9999-12-31
        ("x", -1.0, 1.0, "not unix seconds"),
    ],
)
def test_sample_problem(metric: str, ts: float, value: float, reason: str | None) -> None:
    from sysops_agent.units import sample_problem

    problem = sample_problem(metric, ts, value)
    if reason is None:
        assert problem is None
    else:
        assert problem is not None and reason in problem, problem
