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
        agent.wait_stderr(f"Prometheus exporter listening on 127.0.0.1:{port}")
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
    # gauges whose names end like OpenMetrics summary parts (_count) still parse
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
        (count,) = prom_query(prom, "sysops_process_count")
        assert count["value"][1] == "321"
        (fds,) = prom_query(prom, 'sysops_process_fd_count{pid="7"}')
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
