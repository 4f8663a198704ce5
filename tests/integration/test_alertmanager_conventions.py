"""Our alerts follow Alertmanager's conventions, checked on the real Alertmanager 0.25 (issue 15).

- a standard inhibit rule (critical inhibits warning with ``equal: [alertname,
  instance]``) works on our alerts;
- ``amtool alert query severity=warning`` finds them, with the Summary column filled;
- static ``[agent] labels`` and a configured ``instance`` are on every alert;
- every alert reaches every Alertmanager of an HA pair;
- basic auth (password from a ``*_file``) and bearer tokens are sent.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from sysops_agent.channels.alertmanager import AlertmanagerChannel, AlertmanagerChannelConfig
from sysops_agent.clock import SystemClock
from sysops_agent.model import Alert, AlertState, Severity, make_labels
from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs
from tests.support.servers import Server, get_json, poll, start_alertmanager

pytestmark = pytest.mark.integration

INHIBIT = """inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [alertname, instance]
"""
NAME = "SysopsDiskUsagePercentThreshold"


def disk_alert(severity: Severity, mountpoint: str, t: float) -> Alert:
    return Alert(
        timestamp=t,
        hostname="web-1",
        severity=severity,
        metric="disk_usage_percent",
        value=93.25,
        threshold=90.0,
        message=f"Disk {mountpoint} is 93.2% full",
        analyzer="threshold",
        labels=make_labels(mountpoint=mountpoint, device="sda1"),
        state=AlertState.FIRING,
    )


def alerts(server: Server, query: str = "") -> List[Dict[str, Any]]:
    data = get_json(server.url + "/api/v2/alerts" + query)
    return [a for a in data if a["labels"].get("alertname", "").startswith("Sysops")]


def amtool(server: Server, *args: str) -> str:
    binary = shutil.which("amtool")
    if binary is None:
        pytest.skip("amtool is not installed (Debian's prometheus-alertmanager package has it)")
    result = subprocess.run(
        [binary, f"--alertmanager.url={server.url}", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_inhibit_rule_and_amtool_query(alertmanager_bin: str, tmp_path: Path) -> None:
    server = start_alertmanager(alertmanager_bin, tmp_path / "am", extra_config=INHIBIT)
    channel = AlertmanagerChannel(
        AlertmanagerChannelConfig(
            enabled=True,
            url=server.url,
            runbook_urls={"disk_usage_percent": "https://wiki.example/runbooks/{alertname}"},
        ),
        clock=SystemClock(),
        labels={"env": "prod", "team": "db"},
    )
    try:
        t0 = time.time() - 5
        await channel.send([disk_alert(Severity.WARN, "/data", t0)])
        (warning,) = poll("the warning alert", lambda: alerts(server) or None)
        assert warning["labels"]["severity"] == "warning"
        assert warning["labels"]["level"] == "warn"
        assert (warning["labels"]["env"], warning["labels"]["team"]) == ("prod", "db")
        assert warning["annotations"]["summary"] == "Disk /data is 93.2% full"
        assert warning["annotations"]["runbook_url"] == f"https://wiki.example/runbooks/{NAME}"

        out = amtool(server, "alert", "query", "severity=warning")
        lines = out.splitlines()
        assert lines[0].split()[:1] == ["Alertname"] and "Summary" in lines[0]
        (row,) = [line for line in lines[1:] if NAME in line]
        assert "Disk /data is 93.2% full" in row  # the Summary column is filled

        # a critical alert of the same alertname and instance (another disk) inhibits it
        await channel.send([disk_alert(Severity.EMERGENCY, "/", t0 + 1)])

        def inhibited() -> Optional[Dict[str, Any]]:
            found = [a for a in alerts(server) if a["labels"]["severity"] == "warning"]
            ok = found and found[0]["status"]["state"] == "suppressed"
            return found[0] if ok else None

        suppressed = poll("the warning to be inhibited by the critical", inhibited)
        assert suppressed["status"]["inhibitedBy"]
        (critical,) = [a for a in alerts(server) if a["labels"]["severity"] == "critical"]
        assert critical["labels"]["level"] == "emergency"
        assert critical["status"]["state"] == "active"
        # amtool's default query lists active alerts only: the inhibited warning is gone
        out = amtool(server, "alert", "query", "severity=warning")
        assert NAME not in out
    finally:
        await channel.aclose()
        server.stop()


async def test_every_alert_reaches_both_alertmanagers_with_basic_auth(
    alertmanager_bin: str, tmp_path: Path
) -> None:
    bcrypt = pytest.importorskip("bcrypt")
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    web = f"basic_auth_users:\n  sysops: {hashed}\n"
    first = start_alertmanager(alertmanager_bin, tmp_path / "am1", web_config=web)
    second = start_alertmanager(alertmanager_bin, tmp_path / "am2", web_config=web)
    password_file = tmp_path / "am-password"
    password_file.write_text("s3cret\n")
    password_file.chmod(0o600)
    auth = "Basic " + base64.b64encode(b"sysops:s3cret").decode()

    def listed(server: Server) -> Optional[List[Dict[str, Any]]]:
        req = urllib.request.Request(server.url + "/api/v2/alerts", headers={"Authorization": auth})
        with urllib.request.urlopen(req, timeout=5) as resp:
            found = [a for a in json.loads(resp.read()) if a["labels"]["alertname"] == NAME]
        return found or None

    channel = AlertmanagerChannel(
        AlertmanagerChannelConfig(
            enabled=True,
            url=first.url,
            urls=[second.url],
            instance="web-1.example:9845",
            basic_auth_username="sysops",
            basic_auth_password_file=str(password_file),
        ),
        clock=SystemClock(),
    )
    try:
        await channel.send([disk_alert(Severity.CRITICAL, "/", time.time())])
        for server in (first, second):
            (am,) = poll(f"the alert in {server.name}", lambda s=server: listed(s))
            assert am["labels"]["instance"] == "web-1.example:9845"
        # without the password Alertmanager refuses: the auth really was needed
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(first.url + "/api/v2/alerts", timeout=5)
        assert info.value.code == 401
        info.value.close()
    finally:
        await channel.aclose()
        first.stop()
        second.stop()


def test_running_agent_sends_static_labels_and_log_lines_as_annotations(
    alertmanager: Server, tmp_path: Path
) -> None:
    """The test alert, from the real CLI: no stutter in its name, [agent] labels on it."""
    proc = minimal_procfs(tmp_path)
    extra = f'[alerting.alertmanager]\nenabled = true\nurl = "{alertmanager.url}"\n'
    config = agent_config(tmp_path, proc, extra=extra)
    config.write_text(
        config.read_text().replace(
            '[agent]\nhostname = "test-host"',
            '[agent]\nhostname = "test-host"\nlabels = { env = "staging", team = "ops" }',
        )
    )
    agent = AgentProcess(["test-alert", "--config", str(config), "--channel", "alertmanager"])
    assert agent.proc.wait(60) == 0, "".join(agent.stderr)
    agent.stop()

    def test_alert() -> Optional[Dict[str, Any]]:
        found = [a for a in alerts(alertmanager) if a["labels"]["alertname"] == "SysopsAgentTest"]
        return found[0] if found else None

    am = poll("the test alert", test_alert)
    assert (am["labels"]["env"], am["labels"]["team"]) == ("staging", "ops")
    assert am["labels"]["instance"] == "test-host"
    assert am["annotations"]["summary"]
