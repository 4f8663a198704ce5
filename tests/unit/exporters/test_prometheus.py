from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sysops_agent.clock import VirtualClock
from sysops_agent.config import load_config
from sysops_agent.exporters.config import PrometheusConfig, is_loopback_address
from sysops_agent.exporters.prometheus import (
    PrometheusExporter,
    StoreCollector,
    export_name,
    label_name,
    render,
)
from sysops_agent.model import make_labels
from sysops_agent.storage.store import Store

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("metric", "name", "kind", "scale"),
    [
        ("cpu_usage_percent", "sysops_cpu_usage_ratio", "gauge", 0.01),
        ("cpu_core_usage_percent", "sysops_cpu_core_usage_ratio", "gauge", 0.01),
        ("memory_used_bytes", "sysops_memory_used_bytes", "gauge", 1.0),
        ("disk_read_bytes_per_second", "sysops_disk_read_bytes_per_second", "gauge", 1.0),
        ("net_rx_packets_per_second", "sysops_net_rx_packets_per_second", "gauge", 1.0),
        ("uptime_seconds", "sysops_uptime_seconds", "gauge", 1.0),
        ("agent_collect_duration_seconds", "sysops_agent_collect_duration_seconds", "gauge", 1.0),
        ("agent_samples_dropped_total", "sysops_agent_samples_dropped_total", "counter", 1.0),
        ("agent_alerts_sent_total", "sysops_agent_alerts_sent_total", "counter", 1.0),
        ("kernel_oom_kills_total", "sysops_kernel_oom_kills_total", "counter", 1.0),
        ("load_avg_1m", "sysops_load_avg_1m", "gauge", 1.0),
        ("fd_allocated", "sysops_fd_allocated", "gauge", 1.0),
        # promtool: _count belongs to histograms and summaries
        ("process_count", "sysops_processes", "gauge", 1.0),
        ("process_fd_count", "sysops_process_open_fds", "gauge", 1.0),
        ("weird-name.x", "sysops_weird_name_x", "gauge", 1.0),
        ("1st", "sysops__1st", "gauge", 1.0),
        # a bare suffix is not a unit
        ("total", "sysops_total", "gauge", 1.0),
    ],
)
def test_export_name_table(metric: str, name: str, kind: str, scale: float) -> None:
    exported = export_name(metric)
    assert (exported.name, exported.kind, exported.scale) == (name, kind, scale)
    assert metric in exported.help


def test_label_name_sanitized() -> None:
    assert label_name("mountpoint") == "mountpoint"
    assert label_name("bad-name") == "bad_name"
    assert label_name("__name__") == "exported__name__"
    assert label_name("0x") == "_0x"


def _families(text: bytes) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text.decode())}


def _store() -> Store:
    store = Store()
    for i in range(3):
        t = NOW - 20 + i * 10
        store.add(t, "cpu_usage_percent", 42.0 + i)
        store.add(t, "memory_used_bytes", 1024.0 * 1024)
        store.add(t, "agent_samples_dropped_total", 7.0)
        store.add(t, "agent_alerts_sent_total", 3.0, make_labels(channel="discord"))
        store.add(t, "disk_usage_percent", 50.0, make_labels(mountpoint="/", device="sda1"))
    return store


def test_render_names_types_and_values() -> None:
    clock = VirtualClock(NOW)
    text = render(StoreCollector(_store(), hostname="web-1", clock=clock))
    lines = text.decode().splitlines()
    assert "# TYPE sysops_cpu_usage_ratio gauge" in lines
    assert "# TYPE sysops_agent_samples_dropped_total counter" in lines
    assert "# TYPE sysops_agent_alerts_sent_total counter" in lines
    assert any(line.startswith("# HELP sysops_cpu_usage_ratio ") for line in lines)
    assert "sysops_cpu_usage_ratio 0.44" in lines  # latest value, as a ratio
    assert "sysops_memory_used_bytes 1048576" in lines
    assert "sysops_agent_samples_dropped_total 7" in lines
    assert 'sysops_agent_alerts_sent_total{channel="discord"} 3' in lines
    assert 'sysops_disk_usage_ratio{device="sda1",mountpoint="/"} 0.5' in lines
    assert 'sysops_agent_info{hostname="web-1",version="0.1.0"} 1' in lines
    # every sample name is prefixed; the parser accepts the whole output
    fams = _families(text)
    assert all(name.startswith("sysops_") for name in fams)


def test_hostile_label_values_are_escaped_and_round_trip() -> None:
    store = Store()
    hostile = 'evil"name\\with\nnewline} 1\nfake_metric 2'
    # built by hand: make_labels would escape the controls first (model.clean_text)
    store.add(NOW, "process_rss_bytes", 100.0, (("name", hostile), ("pid", "1")))
    text = render(StoreCollector(store, hostname='h"\n', clock=VirtualClock(NOW)))
    body = text.decode()
    assert "\nfake_metric" not in body
    assert 'name="evil\\"name\\\\with\\nnewline} 1\\nfake_metric 2"' in body
    fams = {f.name: f for f in text_string_to_metric_families(body)}
    (sample,) = fams["sysops_process_rss_bytes"].samples
    assert sample.labels == {"pid": "1", "name": hostile}
    (info,) = fams["sysops_agent_info"].samples
    assert info.labels["hostname"] == 'h"\n'


def test_stale_series_are_not_exported() -> None:
    store = Store()
    # 10 s interval: stale after 30 s without a sample
    store.add(NOW - 50, "net_rx_bytes_per_second", 1.0, make_labels(interface="gone0"))
    store.add(NOW - 40, "net_rx_bytes_per_second", 1.0, make_labels(interface="gone0"))
    store.add(NOW - 20, "net_rx_bytes_per_second", 2.0, make_labels(interface="eth0"))
    store.add(NOW - 10, "net_rx_bytes_per_second", 2.0, make_labels(interface="eth0"))
    # a single sample: stale after stale_after_secs
    store.add(NOW - 100, "uptime_seconds", 5.0)
    store.add(NOW - 400, "fd_max", 5.0)
    text = render(StoreCollector(store, hostname="h", clock=VirtualClock(NOW))).decode()
    assert 'device="eth0"' in text  # node_exporter's label name
    assert "gone0" not in text
    assert "sysops_uptime_seconds 5" in text
    assert "sysops_fd_max" not in text


def test_process_series_bounded_to_top_n_by_rss() -> None:
    store = Store()
    for pid in range(1, 11):
        labels = make_labels(pid=pid, name=f"p{pid}")
        store.add(NOW, "process_rss_bytes", pid * 1000.0, labels)
        store.add(NOW, "process_cpu_percent", 1.0, labels)
    store.add(NOW, "process_count", 10.0)
    collector = StoreCollector(store, hostname="h", clock=VirtualClock(NOW), max_processes=3)
    fams = {f.name: f for f in text_string_to_metric_families(render(collector).decode())}
    rss_pids = {s.labels["pid"] for s in fams["sysops_process_rss_bytes"].samples}
    cpu_pids = {s.labels["pid"] for s in fams["sysops_process_cpu_ratio"].samples}
    assert rss_pids == cpu_pids == {"8", "9", "10"}
    assert fams["sysops_processes"].samples[0].value == 10.0


def test_is_loopback_address() -> None:
    for ok in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"):
        assert is_loopback_address(ok), ok
    for bad in ("0.0.0.0", "", "::", "192.0.2.10", "example.org", "localhost.evil.example"):
        assert not is_loopback_address(bad), bad


def test_non_loopback_refused_unless_allow_remote() -> None:
    exporter = PrometheusExporter(
        PrometheusConfig(enabled=True, listen_address="0.0.0.0", port=0), Store(), hostname="h"
    )
    with pytest.raises(ValueError, match="allow_remote"):
        exporter.start()
    assert exporter.port is None


def test_config_check_reports_non_loopback() -> None:
    text = '[prometheus]\nenabled = true\nlisten_address = "0.0.0.0"\n'
    problems = load_config(text=text, env={}).problems
    assert [p.path for p in problems] == ["prometheus.listen_address"]
    assert "allow_remote" in problems[0].message
    allowed = load_config(text=text + "allow_remote = true\n", env={}).problems
    assert allowed == []
    # a disabled exporter binds nothing: nothing to report
    assert load_config(text='[prometheus]\nlisten_address = "0.0.0.0"\n', env={}).problems == []


def _get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.headers["Content-Type"], resp.read().decode()


@pytest.mark.slow
def test_serves_metrics_and_stops_cleanly() -> None:
    exporter = PrometheusExporter(
        PrometheusConfig(enabled=True, port=0), _store(), hostname="h", clock=VirtualClock(NOW)
    )
    exporter.start()
    port = exporter.port
    assert port
    try:
        status, ctype, body = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert ctype.startswith("text/plain; version=0.0.4")
        assert "sysops_cpu_usage_ratio 0.44" in body
    finally:
        exporter.stop()
    exporter.stop()  # idempotent
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


@pytest.mark.slow
def test_allow_remote_binds_any_address() -> None:
    exporter = PrometheusExporter(
        PrometheusConfig(enabled=True, listen_address="0.0.0.0", port=0, allow_remote=True),
        Store(),
        hostname="h",
    )
    exporter.start()
    try:
        status, _, body = _get(f"http://127.0.0.1:{exporter.port}/metrics")
        assert status == 200 and "sysops_agent_info" in body
    finally:
        exporter.stop()
