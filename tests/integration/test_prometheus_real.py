"""The real Prometheus (Debian's ``prometheus`` 2.42) scrapes the real agent (``sysops-agent run``).

The agent runs against a fixture procfs the test writes (memory, load, uptime
collected every second); Prometheus scrapes it every second; the test reads
our metrics back through PromQL on Prometheus' HTTP API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs, write_meminfo
from tests.support.servers import (
    free_port,
    get_json,
    poll,
    prom_query,
    start_prometheus,
)

pytestmark = pytest.mark.integration


def _by_name(results: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    return {r["metric"]["__name__"]: r for r in results}


def test_prometheus_scrapes_the_running_agent(prometheus_bin: str, tmp_path: Path) -> None:
    proc = minimal_procfs(tmp_path, used_percent=10.0)
    port = free_port()
    target = f"127.0.0.1:{port}"
    config = agent_config(tmp_path, proc, extra=f"[prometheus]\nenabled = true\nport = {port}\n")
    agent = AgentProcess(["run", "--config", str(config)])
    server = None
    try:
        agent.wait_stderr(f"Prometheus exporter listening on http://127.0.0.1:{port}")
        server = prom = start_prometheus(prometheus_bin, tmp_path / "prometheus", [target])

        def scraped() -> Optional[Dict[str, Dict[str, Any]]]:
            query = '{job="sysops", __name__=~"sysops_.+"}'
            found = _by_name(prom_query(prom, query))
            wanted = {"sysops_memory_usage_ratio", "sysops_load_avg_1m", "sysops_uptime_seconds"}
            return found if wanted <= found.keys() else None

        found = poll("Prometheus to scrape our metrics", scraped, timeout=30)
        mem = found["sysops_memory_usage_ratio"]
        assert mem["metric"]["instance"] == target
        assert float(mem["value"][1]) == pytest.approx(0.10, abs=0.001)
        assert float(found["sysops_load_avg_1m"]["value"][1]) == pytest.approx(0.10)
        assert float(found["sysops_uptime_seconds"]["value"][1]) == pytest.approx(12345.67)
        assert found["sysops_memory_total_bytes"]["value"][1] == str(4_000_000 * 1024)
        info = found["sysops_agent_info"]["metric"]
        assert info["hostname"] == "test-host"

        (up,) = prom_query(prom, f'up{{instance="{target}"}}')
        assert up["value"][1] == "1"
        # our counters are typed counter in Prometheus' metadata
        meta = get_json(prom.url + "/api/v1/metadata")["data"]
        # OpenMetrics scrapes name the counter family without its _total suffix
        family = meta.get("sysops_agent_samples_dropped_total") or meta.get(
            "sysops_agent_samples_dropped", []
        )
        assert {m["type"] for m in family} == {"counter"}, sorted(meta)
        assert {m["type"] for m in meta["sysops_memory_usage_ratio"]} == {"gauge"}

        # /metrics shows the latest value: the query follows a change of the host
        write_meminfo(proc, 55.0)

        def updated() -> Optional[float]:
            results = prom_query(prom, 'sysops_memory_usage_ratio{job="sysops"}')
            value = float(results[0]["value"][1]) if results else 0.0
            return value if value == pytest.approx(0.55, abs=0.001) else None

        poll("the new memory usage in PromQL", updated, timeout=20)
        # PromQL arithmetic on our ratio works as for any exporter
        (pct,) = prom_query(prom, 'sysops_memory_usage_ratio{job="sysops"} * 100')
        assert float(pct["value"][1]) == pytest.approx(55.0, abs=0.1)
    finally:
        if server is not None:
            server.stop()
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)


def test_prometheus_parses_hostile_labels_counters_and_drops_stale_series(
    prometheus_bin: str, tmp_path: Path
) -> None:
    """The exporter alone, fed through a store: what Prometheus makes of our exposition."""
    import time

    from sysops_agent.clock import VirtualClock
    from sysops_agent.exporters.config import PrometheusConfig
    from sysops_agent.exporters.prometheus import PrometheusExporter
    from sysops_agent.model import make_labels
    from sysops_agent.storage.store import Store

    store = Store()
    hostile = 'we"ird\\proc\nname'
    now = time.time()
    clock = VirtualClock(now)  # the exporter's "now": moved by the test, not waited for
    # built by hand: make_labels would escape the newline first (model.clean_text)
    raw = (("name", hostile), ("pid", "7"))
    store.add(now, "process_rss_bytes", 4096.0, raw)
    store.add(now, "agent_alerts_sent_total", 3.0, make_labels(channel="slack"))
    # gauges named *_count are exported without it (promtool: _count is for summaries)
    store.add(now, "process_count", 321.0)
    store.add(now, "process_fd_count", 9.0, raw)
    store.add(now - 10, "net_rx_bytes_per_second", 10.0, make_labels(interface="eth9"))
    store.add(now, "net_rx_bytes_per_second", 12.0, make_labels(interface="eth9"))
    exporter = PrometheusExporter(
        PrometheusConfig(enabled=True, port=0), store, hostname="h", clock=clock
    )
    exporter.start()
    server = None
    try:
        server = prom = start_prometheus(
            prometheus_bin, tmp_path / "prometheus", [f"127.0.0.1:{exporter.port}"]
        )

        def rss() -> Optional[List[Any]]:
            return prom_query(prom, "sysops_process_rss_bytes") or None

        (sample,) = poll("the process series in Prometheus", rss)
        assert sample["metric"]["name"] == hostile  # escaped by us, unescaped by Prometheus
        assert sample["metric"]["pid"] == "7"
        (sent,) = prom_query(prom, 'sysops_agent_alerts_sent_total{channel="slack"}')
        assert sent["value"][1] == "3"
        (count,) = prom_query(prom, "sysops_processes")
        assert count["value"][1] == "321"
        (fds,) = prom_query(prom, 'sysops_process_open_fds{pid="7"}')
        assert fds["value"][1] == "9"
        (rx,) = prom_query(prom, "sysops_net_rx_bytes_per_second")
        assert rx["value"][1] == "12"

        # 40 s later eth9 has had no sample for 3 of its 10 s intervals: it leaves
        # /metrics, Prometheus marks it stale and an instant query no longer returns
        # it; the process series (one sample: kept for stale_after_secs) stays.
        clock.set(now + 40)

        def eth9_gone() -> Optional[bool]:
            return True if not prom_query(prom, "sysops_net_rx_bytes_per_second") else None

        poll("the stale interface to disappear", eth9_gone, timeout=30)
        assert prom_query(prom, "sysops_process_rss_bytes")
    finally:
        if server is not None:
            server.stop()
        exporter.stop()


NETDEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
  eth0: {rx}    2000    0    0    0     0          0         0   300000    1500    0    0    0     0       0          0
"""


def test_prometheus_rate_over_our_raw_counters(prometheus_bin: str, tmp_path: Path) -> None:
    """rate()/increase() over a window Prometheus chooses: needs raw counters (issue 15)."""
    import threading

    proc = minimal_procfs(tmp_path)
    (proc / "net").mkdir()
    (proc / "net" / "dev").write_text(NETDEV.format(rx=1_000_000))
    port = free_port()
    target = f"127.0.0.1:{port}"
    config = agent_config(tmp_path, proc, extra=f"[prometheus]\nenabled = true\nport = {port}\n")
    config.write_text(
        config.read_text().replace(
            "[collector.network]\nenabled = false", "[collector.network]\ninterval_secs = 1"
        )
    )
    agent = AgentProcess(["run", "--config", str(config)])
    stop = threading.Event()

    def traffic() -> None:  # 10,000 bytes every 0.5 s: 20 kB/s
        rx = 1_000_000
        while not stop.wait(0.5):
            rx += 10_000
            tmp = proc / "net" / ".dev.tmp"
            tmp.write_text(NETDEV.format(rx=rx))
            tmp.replace(proc / "net" / "dev")

    writer = threading.Thread(target=traffic, daemon=True)
    server = None
    try:
        agent.wait_stderr(f"Prometheus exporter listening on http://{target}")
        writer.start()
        server = prom = start_prometheus(prometheus_bin, tmp_path / "prometheus", [target])

        def rate() -> Optional[float]:
            query = 'rate(sysops_network_receive_bytes_total{job="sysops",device="eth0"}[5s])'
            results = prom_query(prom, query)
            value = float(results[0]["value"][1]) if results else 0.0
            # 20 kB/s once the 5 s window holds only steady traffic
            return value if 15_000 <= value <= 25_000 else None

        poll("rate() over our raw counter to read the 20 kB/s written", rate, timeout=30)
        meta = get_json(prom.url + "/api/v1/metadata")["data"]
        family = meta.get("sysops_network_receive_bytes_total") or meta.get(
            "sysops_network_receive_bytes", []
        )
        assert {m["type"] for m in family} == {"counter"}
        (rates,) = prom_query(prom, 'sysops_net_rx_bytes_per_second{job="sysops"}')
        assert rates["metric"]["device"] == "eth0"  # node_exporter's label name on the rates too
    finally:
        stop.set()
        if server is not None:
            server.stop()
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)


def test_remote_write_into_the_real_prometheus(prometheus_bin: str, tmp_path: Path) -> None:
    """[remote_write] pushes to Prometheus' own receiver; PromQL returns our series (issue 15)."""
    prom = start_prometheus(
        prometheus_bin,
        tmp_path / "prometheus",
        [],
        extra_args=["--web.enable-remote-write-receiver"],
    )
    proc = minimal_procfs(tmp_path, used_percent=25.0)
    extra = (
        "[remote_write]\nenabled = true\n"
        f'url = "{prom.url}/api/v1/write"\ninterval_secs = 1\n'
        'external_labels = { cluster = "it-1" }\n'
    )
    config = agent_config(tmp_path, proc, extra=extra)
    config.write_text(
        config.read_text().replace(
            '[agent]\nhostname = "test-host"',
            '[agent]\nhostname = "test-host"\nlabels = { env = "prod" }',
        )
    )
    agent = AgentProcess(["run", "--config", str(config)])
    try:
        agent.wait_stderr("remote_write: pushing to")

        def pushed() -> Optional[Dict[str, Any]]:
            results = prom_query(prom, 'sysops_memory_usage_ratio{cluster="it-1"}')
            return results[0] if results else None

        found = poll("our pushed series in PromQL", pushed, timeout=30)
        labels = found["metric"]
        assert (labels["instance"], labels["job"], labels["env"]) == (
            "test-host",
            "sysops-agent",
            "prod",
        )
        assert float(found["value"][1]) == pytest.approx(0.25, abs=0.001)
        # several points per series arrive (one per collection), not only the latest
        (count,) = prom_query(prom, 'count_over_time(sysops_load_avg_1m{cluster="it-1"}[1m])')

        def several() -> Optional[bool]:
            (c,) = prom_query(prom, 'count_over_time(sysops_load_avg_1m{cluster="it-1"}[1m])')
            return True if float(c["value"][1]) >= 3 else None

        poll("several pushed points", several, timeout=30)
        assert float(count["value"][1]) >= 1
    finally:
        code = agent.stop()
        prom.stop()
    assert code == 0, "".join(agent.stderr)
