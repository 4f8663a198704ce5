"""The agent's own health metrics."""

from __future__ import annotations

from sysops_agent.selfmetrics import self_samples
from sysops_agent.storage.store import Store
from sysops_agent.units import unit_of


def test_the_store_reports_its_series_and_bytes() -> None:
    store = Store(max_samples=100)
    for i in range(50):
        store.add(float(i), "cpu_usage_percent", float(i % 7))
        store.add(float(i), "memory_usage_percent", 40.0)
    got = {
        s.metric: s.value
        for s in self_samples(50.0, samples_dropped=0, alerts_dropped=0, store=store)
    }
    assert got["agent_store_series"] == 2.0
    assert got["agent_store_bytes"] == float(store.memory_bytes()) > 0
    assert unit_of("agent_store_series").name == "count"
    assert unit_of("agent_store_bytes").name == "bytes"


def test_without_a_store_there_is_no_store_metric() -> None:
    names = {s.metric for s in self_samples(1.0, samples_dropped=3, alerts_dropped=0)}
    assert "agent_samples_dropped_total" in names
    assert not names & {"agent_store_series", "agent_store_bytes"}
