"""The Grafana dashboard queries only metrics that the agent exports.

The exported names are derived, not copied: our metric names (the SPEC §3
list, and every metric the collectors produce in the captured fixture trees)
go through the exporter's own :func:`export_name`, plus what the exporter adds
by itself (``sysops_agent_info``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sysops_agent.collectors.uptime import UptimeCollector
from sysops_agent.config import load_config
from sysops_agent.daemon import Daemon
from sysops_agent.exporters.prometheus import StoreCollector, export_name, render
from sysops_agent.logwatch.patterns import COUNTERS
from sysops_agent.procfs import ProcFS
from sysops_agent.scheduler import CollectorScheduler
from sysops_agent.storage.store import Store
from tests.support.agentproc import minimal_procfs
from tests.support.paths import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "sysops-agent.json"
FIXTURES = ROOT / "tests" / "fixtures" / "proc"
#: SPEC.md lives in the shared folder beside the checkout
SPEC_CANDIDATES = [ROOT.parent / "shared" / "SPEC.md", ROOT / "SPEC.md"]

_BACKTICK_METRIC = re.compile(r"`([a-z][a-z0-9_]*)(\{[^}`]*\})?`")
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}


def spec_metrics() -> Set[str]:
    for path in SPEC_CANDIDATES:
        if path.exists():
            text = path.read_text(encoding="utf-8")
            section = text[text.index("## 3.") : text.index("## 4.")]
            return {m.group(1) for m in _BACKTICK_METRIC.finditer(section)}
    return set()


def fixture_metrics() -> Set[str]:
    names: Set[str] = set()
    for expected in FIXTURES.glob("*/expected.json"):
        spec = json.loads(expected.read_text())
        for step in spec.get("steps", []):
            names.update(sample[0] for sample in step.get("samples", []))
    return names


def self_metric_names() -> Set[str]:
    """The agent's own health metrics, as the real daemon records them."""

    async def record() -> Set[str]:
        with tempfile.TemporaryDirectory() as tmp:
            loaded = load_config(None, env={})
            agent = dataclasses.replace(loaded.config.agent, data_dir=tmp)  # not /var/lib
            loaded.config = dataclasses.replace(loaded.config, agent=agent)
            daemon = Daemon(loaded, None)
            daemon._start_manager()
            daemon.record_self_metrics()
            await daemon._stop_manager()
            collector = UptimeCollector(ProcFS(minimal_procfs(Path(tmp))))
            scheduler = CollectorScheduler([collector], daemon.samples.put_many, daemon.clock)
            await scheduler.run_once(collector)
            await scheduler.stop()
        return {s.metric for s in daemon.samples.drain()}

    return asyncio.run(record())


def exported_names() -> Set[str]:
    # the log watcher's kernel_*_total event counters
    # and every metric a collector declares (GPUs have no /proc fixture)
    from sysops_agent.config_checks import known_metrics

    ours = spec_metrics() | fixture_metrics() | self_metric_names() | set(COUNTERS)
    ours |= set(known_metrics())
    names = {export_name(m).name for m in ours}
    # what the exporter emits on its own, whatever the store holds
    text = render(StoreCollector(Store(), hostname="h")).decode()
    names.update(s.name for f in text_string_to_metric_families(text) for s in f.samples)
    return names


def promql_metric_names(expr: str) -> List[str]:
    """Metric names in a PromQL expression: identifiers that are not functions,
    keywords, label names (inside ``{}``/``by (...)``), strings or ranges."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range / subquery durations
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = []
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", expr):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.append(word)
    return names


def panels(dashboard: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


@pytest.fixture(scope="module")
def dashboard() -> Dict[str, Any]:
    data: Dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def test_exported_names_come_from_spec_and_fixtures() -> None:
    names = exported_names()
    assert spec_metrics() or fixture_metrics()
    assert "sysops_cpu_usage_ratio" in names
    assert "sysops_agent_info" in names
    assert "sysops_agent_alerts_sent_total" in names
    assert "sysops_agent_rss_bytes" in names


def test_promql_metric_names_parser() -> None:
    expr = (
        'sum by (channel) (increase(sysops_a_total{instance=~"$instance", x="y z"}[1h]))'
        " / on (instance) group_left sysops_b > bool 0.5 or -sysops_c offset 5m"
    )
    assert promql_metric_names(expr) == ["sysops_a_total", "sysops_b", "sysops_c"]


def test_every_queried_metric_is_exported(dashboard: Dict[str, Any]) -> None:
    exported = exported_names()
    queried: Set[str] = set()
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            names = promql_metric_names(target["expr"])
            assert names, f"panel {panel['title']!r}: no metric in {target['expr']!r}"
            unknown = [n for n in names if n not in exported]
            assert not unknown, f"panel {panel['title']!r} queries unexported {unknown}"
            queried.update(names)
    label_args = {"instance", "hostname"}  # label_values(metric, LABEL)
    for variable in dashboard["templating"]["list"]:
        names = set(promql_metric_names(variable["definition"])) - label_args
        queried.update(names)
        assert names <= exported
    # the dashboard covers every area it promises
    for name in (
        "sysops_cpu_usage_ratio",
        "sysops_memory_usage_ratio",
        "sysops_disk_usage_ratio",
        "sysops_disk_read_bytes_per_second",
        "sysops_net_rx_bytes_per_second",
        "sysops_load_avg_1m",
        "sysops_fd_usage_ratio",
        "sysops_process_rss_bytes",
        "sysops_agent_rss_bytes",
        "sysops_agent_samples_dropped_total",
        "sysops_kernel_oom_kills_total",
    ):
        assert name in queried, name


def test_datasource_input_and_instance_variable(dashboard: Dict[str, Any]) -> None:
    (ds_input,) = dashboard["__inputs"]
    assert ds_input["name"] == "DS_PROMETHEUS" and ds_input["pluginId"] == "prometheus"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["instance"]["datasource"]["uid"] == "${DS_PROMETHEUS}"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        for target in panel["targets"]:
            assert 'instance=~"$instance"' in target["expr"], (panel["title"], target["expr"])
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
