"""The real Alertmanager (Debian's ``prometheus-alertmanager`` 0.25) receives our alerts.

First the channel on its own (firing, escalation, resolved), then the whole
agent (``sysops-agent run``) whose threshold analyzer fires and resolves
because the test rewrites the fixture ``/proc/meminfo``. Everything is checked
through Alertmanager's own API v2 (``GET /api/v2/alerts`` lists active alerts;
a resolved one — ``endsAt`` in the past — leaves that list).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from sysops_agent.channels.alertmanager import AlertmanagerChannel, AlertmanagerChannelConfig
from sysops_agent.clock import SystemClock
from sysops_agent.model import Alert, AlertState, Severity, make_labels
from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs, write_meminfo
from tests.support.servers import Server, get_json, poll

pytestmark = pytest.mark.integration


def _alerts(server: Server, alertname: str) -> List[Dict[str, Any]]:
    data = get_json(server.url + "/api/v2/alerts")
    return [a for a in data if a["labels"].get("alertname") == alertname]


def _alert(state: AlertState, severity: Severity, t: float) -> Alert:
    return Alert(
        timestamp=t,
        hostname="web-1",
        severity=severity,
        metric="disk_usage_percent",
        value=93.25,
        threshold=90.0,
        message="Disk / is 93.2% full",
        analyzer="threshold",
        labels=make_labels(mountpoint="/", device="sda1"),
        duration=60.0,
        state=state,
    )


async def test_channel_firing_escalation_and_resolved(alertmanager: Server) -> None:
    name = "SysopsDiskUsagePercentThreshold"
    channel = AlertmanagerChannel(
        AlertmanagerChannelConfig(enabled=True, url=alertmanager.url), clock=SystemClock()
    )
    try:
        t0 = time.time() - 5
        await channel.send([_alert(AlertState.FIRING, Severity.WARN, t0)])
        (am,) = poll("the firing alert", lambda: _alerts(alertmanager, name) or None)
        assert am["labels"] == {
            "alertname": name,
            "instance": "web-1",
            "severity": "warning",
            "level": "warn",
            "metric": "disk_usage_percent",
            "mountpoint": "/",
            "device": "sda1",
        }
        assert am["annotations"] == {
            "message": "Disk / is 93.2% full",
            "value": "93.25",
            "threshold": "90",
            "analyzer": "threshold",
            "duration": "60s",
            "summary": "Disk / is 93.2% full",
            "description": "disk_usage_percent = 93.25 on web-1 "
            "(threshold, threshold 90, level warn)",
        }
        assert am["status"]["state"] == "active"
        assert am["startsAt"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0)))
        # firing alerts carry endsAt = now + 4 re-send intervals
        assert am["endsAt"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 200))

        # escalation: critical fires, the warn alert of the same disk is resolved
        await channel.send([_alert(AlertState.FIRING, Severity.CRITICAL, t0 + 2)])

        def only_critical() -> Optional[List[Dict[str, Any]]]:
            found = _alerts(alertmanager, name)
            ok = [a["labels"]["severity"] for a in found] == ["critical"]
            return found if ok else None

        poll("warn to be replaced by critical", only_critical)

        await channel.send([_alert(AlertState.RESOLVED, Severity.CRITICAL, time.time())])
        poll(
            "the resolved alert to leave the active list",
            lambda: _alerts(alertmanager, name) == [] or None,
        )
    finally:
        await channel.aclose()


def test_running_agent_fires_and_resolves_in_alertmanager(
    alertmanager: Server, tmp_path: Path
) -> None:
    name = "SysopsMemoryUsagePercentThreshold"
    proc = minimal_procfs(tmp_path, used_percent=10.0)
    extra = f'[alerting.alertmanager]\nenabled = true\nurl = "{alertmanager.url}"\n'
    agent = AgentProcess(["run", "--config", str(agent_config(tmp_path, proc, extra=extra))])
    try:
        agent.wait_stderr("collectors: ")
        write_meminfo(proc, 93.0)  # above the default critical level (90)

        def critical() -> Optional[Dict[str, Any]]:
            found = [
                a for a in _alerts(alertmanager, name) if a["labels"]["severity"] == "critical"
            ]
            return found[0] if found else None

        am = poll("the agent's critical memory alert in Alertmanager", critical, timeout=30)
        assert am["labels"]["instance"] == "test-host"
        assert am["labels"]["metric"] == "memory_usage_percent"
        assert am["annotations"]["analyzer"] == "threshold"
        assert float(am["annotations"]["value"]) == pytest.approx(93.0, abs=0.1)
        assert float(am["annotations"]["threshold"]) == pytest.approx(90.0)
        assert am["status"]["state"] == "active"

        write_meminfo(proc, 40.0)
        poll(
            "the resolved memory alert to leave Alertmanager's active list",
            lambda: _alerts(alertmanager, name) == [] or None,
            timeout=30,
        )
    finally:
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)
