from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any, Callable, List

import pytest

from sysops_agent import httpclient
from sysops_agent.channels.alertmanager import (
    ENDS_AT_INTERVALS,
    AlertmanagerChannel,
    AlertmanagerChannelConfig,
    alert_annotations,
    alert_labels,
    alert_name,
    create,
)
from sysops_agent.channels.base import ChannelError
from sysops_agent.channels.registry import context
from sysops_agent.clock import VirtualClock
from sysops_agent.config import load_config
from sysops_agent.model import Alert, AlertState, Severity, iso_utc, make_labels
from sysops_agent.redact import Redactor
from tests.support.httpserver import mock_transport, response

T0 = 1_700_000_000.0


def _alert(
    t: float = T0,
    severity: Severity = Severity.WARN,
    state: AlertState = AlertState.FIRING,
    labels: dict[str, str] | None = None,
) -> Alert:
    return Alert(
        timestamp=t,
        hostname="web-1",
        severity=severity,
        metric="disk_usage_percent",
        value=91.5,
        threshold=90.0,
        message="Disk / is 91.5% full",
        analyzer="threshold",
        labels=make_labels(labels or {"mountpoint": "/", "device": "sda1"}),
        duration=120.0,
        state=state,
    )


class Recorder:
    """A stand-in Alertmanager: records every POSTed body, answers ``status``."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.bodies: List[Any] = []
        self.urls: List[str] = []
        self.status = status
        self.headers = headers or {}
        self.event = asyncio.Event()

    def __call__(self, request: httpclient.Request) -> httpclient.Response:
        self.urls.append(str(request.url))
        self.bodies.append(json.loads(request.content))
        self.event.set()
        return response(self.status, "bad alert", self.headers)

    async def wait_for(self, n: int) -> None:
        async def until() -> None:
            while len(self.bodies) < n:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(until(), timeout=5)


def _channel(
    rec: Callable[[httpclient.Request], httpclient.Response],
    clock: VirtualClock,
    url: str = "http://am.test:9093/",
    **cfg: Any,
) -> AlertmanagerChannel:
    config = AlertmanagerChannelConfig(enabled=True, url=url, **cfg)
    return AlertmanagerChannel(config, clock=clock, transport=mock_transport(rec))


@pytest.mark.parametrize(
    ("metric", "analyzer", "name"),
    [
        ("cpu_usage_percent", "threshold", "SysopsCpuUsagePercentThreshold"),
        ("memory_usage_percent", "zscore", "SysopsMemoryUsagePercentZscore"),
        ("process_rss_bytes", "leak", "SysopsProcessRssBytesLeak"),
        ("oom-kill", "log", "SysopsOomKillLog"),
        # no stutter (issue 15): the analyzer is not repeated, nor the Sysops prefix
        ("log_oom_kill", "log", "SysopsLogOomKill"),
        ("sysops_agent_test", "test", "SysopsAgentTest"),
    ],
)
def test_alert_name(metric: str, analyzer: str, name: str) -> None:
    assert alert_name(metric, analyzer) == name


def test_labels_include_alert_labels_and_never_override_ours() -> None:
    alert = _alert(labels={"severity": "fake", "instance": "spoof", "bad-name": "x", "empty": ""})
    labels = alert_labels(alert)
    assert labels == {
        "alertname": "SysopsDiskUsagePercentThreshold",
        "instance": "web-1",
        "severity": "warning",
        "level": "warn",
        "metric": "disk_usage_percent",
        "exported_severity": "fake",
        "exported_instance": "spoof",
        "bad_name": "x",
    }


async def test_firing_payload_shape() -> None:
    clock = VirtualClock(T0 + 5)
    rec = Recorder()
    channel = _channel(rec, clock, generator_url="http://grafana.test/d/sysops")
    try:
        await channel.send([_alert()])
        assert rec.urls == ["http://am.test:9093/api/v2/alerts"]
        (body,) = rec.bodies
        assert body == [
            {
                "labels": {
                    "alertname": "SysopsDiskUsagePercentThreshold",
                    "instance": "web-1",
                    "severity": "warning",
                    "level": "warn",
                    "metric": "disk_usage_percent",
                    "device": "sda1",
                    "mountpoint": "/",
                },
                "annotations": {
                    "message": "Disk / is 91.5% full",
                    "value": "91.5",
                    "threshold": "90",
                    "analyzer": "threshold",
                    "duration": "120s",
                    "summary": "Disk / is 91.5% full",
                    "description": "disk_usage_percent = 91.5 on web-1 "
                    "(threshold, threshold 90, level warn)",
                },
                "startsAt": "2023-11-14T22:13:20Z",
                # firing: endsAt is 4 resend intervals ahead, so a dead agent's alert expires
                "endsAt": iso_utc(T0 + 5 + ENDS_AT_INTERVALS * 60),
                "generatorURL": "http://grafana.test/d/sysops",
            }
        ]
    finally:
        await channel.aclose()


async def test_firing_resent_every_interval_until_resolved_then_resolved_resent() -> None:
    clock = VirtualClock(T0)
    rec = Recorder()
    channel = _channel(rec, clock, resend_interval_secs=60.0, resolved_resend_secs=180.0)
    try:
        await channel.send([_alert()])
        assert len(rec.bodies) == 1
        await clock.advance(59)
        assert len(rec.bodies) == 1  # not before the interval
        await clock.advance(1)
        await rec.wait_for(2)
        await clock.advance(60)
        await rec.wait_for(3)
        for body in rec.bodies[1:]:
            (item,) = body
            assert item["labels"]["severity"] == "warning"
            assert item["startsAt"] == iso_utc(T0)  # the original start, every time
        assert rec.bodies[2][0]["endsAt"] == iso_utc(T0 + 120 + ENDS_AT_INTERVALS * 60)

        resolved_at = clock.time() + 10
        clock.set(resolved_at)
        await channel.send([_alert(t=resolved_at, state=AlertState.RESOLVED)])
        assert len(rec.bodies) == 4
        (item,) = rec.bodies[3]
        assert item["endsAt"] == iso_utc(resolved_at)
        assert item["startsAt"] == iso_utc(T0)

        # resolved alerts are re-sent (endsAt in the past) for resolved_resend_secs
        for _ in range(3):
            await clock.advance(60)
        await rec.wait_for(7)
        for body in rec.bodies[4:]:
            assert [i["endsAt"] for i in body] == [iso_utc(resolved_at)]
        await clock.advance(600)
        assert len(rec.bodies) == 7  # forgotten after that: nothing left to send
        assert channel.tracked() == []
        assert clock.next_deadline() is None  # and the idle loop ended: no wake-ups
        # the next alert starts it again
        await channel.send([_alert(t=clock.time())])
        await clock.advance(60)
        await rec.wait_for(9)
    finally:
        await channel.aclose()


async def test_escalation_resolves_the_other_severity() -> None:
    clock = VirtualClock(T0)
    rec = Recorder()
    channel = _channel(rec, clock)
    try:
        await channel.send([_alert()])
        await channel.send([_alert(t=T0 + 30, severity=Severity.CRITICAL)])
        items = {i["labels"]["severity"]: i for i in rec.bodies[1]}
        assert items["warning"]["endsAt"] == iso_utc(T0 + 30)
        assert items["critical"]["startsAt"] == iso_utc(T0 + 30)
        assert items["critical"]["endsAt"] > iso_utc(T0 + 30)
        # another series (other mountpoint) is untouched
        await channel.send([_alert(t=T0 + 40, labels={"mountpoint": "/var", "device": "sdb1"})])
        assert len(rec.bodies[2]) == 1
        # a resolved notice ends the firing critical
        await channel.send(
            [_alert(t=T0 + 50, severity=Severity.CRITICAL, state=AlertState.RESOLVED)]
        )
        (item,) = rec.bodies[3]
        assert (item["labels"]["severity"], item["endsAt"]) == ("critical", iso_utc(T0 + 50))
    finally:
        await channel.aclose()


async def test_resolved_without_known_firing_is_still_sent() -> None:
    clock = VirtualClock(T0)
    rec = Recorder()
    channel = _channel(rec, clock)
    try:
        await channel.send([_alert(t=T0 + 300, state=AlertState.RESOLVED)])
        (item,) = rec.bodies[0]
        assert item["startsAt"] == iso_utc(T0 + 300 - 120)  # timestamp - duration
        assert item["endsAt"] == iso_utc(T0 + 300)
    finally:
        await channel.aclose()


async def test_final_error_forgets_the_alert_retryable_keeps_it() -> None:
    clock = VirtualClock(T0)
    rec = Recorder(status=400)
    channel = _channel(rec, clock)
    try:
        with pytest.raises(ChannelError) as info:
            await channel.send([_alert()])
        assert not info.value.retryable and info.value.status == 400
        assert "HTTP 400" in str(info.value)
        assert channel.tracked() == []

        rec.status = 503
        rec.headers = {"Retry-After": "7"}
        with pytest.raises(ChannelError) as info:
            await channel.send([_alert()])
        assert info.value.retryable and info.value.retry_after == 7.0
        assert len(channel.tracked()) == 1
        # the re-send loop delivers it once Alertmanager is back
        rec.status = 200
        await clock.advance(60)
        await rec.wait_for(3)
        assert rec.bodies[2][0]["labels"]["severity"] == "warning"
    finally:
        await channel.aclose()


async def test_network_error_is_retryable_and_redacted() -> None:
    def refuse(request: httpclient.Request) -> httpclient.Response:
        raise httpclient.ConnectError(f"connection refused to {request.url}")

    clock = VirtualClock(T0)
    channel = _channel(refuse, clock, url="http://admin:s3cretpass@am.test:9093")
    try:
        with pytest.raises(ChannelError) as info:
            await channel.send([_alert()])
        assert info.value.retryable
        assert "s3cretpass" not in str(info.value)
    finally:
        await channel.aclose()


async def test_resend_failure_does_not_kill_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    clock = VirtualClock(T0)
    rec = Recorder()
    channel = _channel(rec, clock)
    try:
        await channel.send([_alert()])
        rec.status = 500
        await clock.advance(60)
        await rec.wait_for(2)
        rec.status = 200
        await clock.advance(60)
        await rec.wait_for(3)
        assert channel.resend_rounds == 2
        assert any("re-sending 1 alerts failed" in r.getMessage() for r in caplog.records)
    finally:
        await channel.aclose()


async def test_aclose_stops_the_resend_loop() -> None:
    clock = VirtualClock(T0)
    rec = Recorder()
    channel = _channel(rec, clock)
    await channel.send([_alert()])
    await channel.aclose()
    await clock.advance(600)
    assert len(rec.bodies) == 1


def test_factory_uses_config() -> None:
    text = (
        "[alerting]\nsend_timeout_secs = 7\n"
        '[alerting.alertmanager]\nenabled = true\nurl = "http://127.0.0.1:9093"\n'
        "resend_interval_secs = 30\n"
    )
    result = load_config(text=text, env={})
    assert result.problems == []
    channel = create(
        result.config.alerting.alertmanager,
        context(result.config.alerting, Redactor(), VirtualClock(T0)),
    )
    assert channel.name == "alertmanager"
    assert channel.url == "http://127.0.0.1:9093/api/v2/alerts"
    assert channel.config.resend_interval_secs == 30
    assert channel.timeout == 7


async def test_events_are_sent_once_with_an_end_and_not_tracked() -> None:
    clock = VirtualClock(T0)
    rec = Recorder()
    channel = _channel(rec, clock)
    try:
        oom = _alert().evolve(
            analyzer="log", metric="log_oom_kill", labels=make_labels(pid=42, process="java")
        )
        await channel.send([oom])
        (item,) = rec.bodies[0]
        assert item["labels"]["alertname"] == "SysopsLogOomKill"
        assert item["startsAt"] == iso_utc(T0)
        assert item["endsAt"] == iso_utc(T0 + ENDS_AT_INTERVALS * 60)
        assert channel.tracked() == []
        await clock.advance(600)
        assert len(rec.bodies) == 1  # never re-sent
    finally:
        await channel.aclose()


async def test_pipeline_does_not_rate_limit_the_alertmanager_channel() -> None:
    """A held-back "resolved" would leave the alert firing in Alertmanager for ever."""
    from sysops_agent.alerting.config import PipelineConfig
    from sysops_agent.alerting.manager import AlertManager

    clock = VirtualClock(T0)
    rec = Recorder()
    channel = _channel(rec, clock)
    config = PipelineConfig(rate_limit_burst=1, rate_limit_per_minute=0.1, group_window_secs=0)
    manager = AlertManager(config, [channel], clock)
    try:
        for i in range(4):
            labels = {"mountpoint": f"/m{i}", "device": f"sd{i}"}
            manager.submit(_alert(labels=labels))
            manager.submit(_alert(t=T0 + 1, state=AlertState.RESOLVED, labels=labels))
        await rec.wait_for(8)
        states = [i["endsAt"] == iso_utc(T0 + 1) for body in rec.bodies for i in body]
        assert states.count(True) == 4  # every resolved notice got through
        assert manager.suppressed() == {"alertmanager": 0}
    finally:
        await manager.close(5)


# --- Alertmanager conventions (issue 15) ----------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (Severity.INFO, "info"),
        (Severity.WARN, "warning"),
        (Severity.CRITICAL, "critical"),
        (Severity.EMERGENCY, "critical"),
    ],
)
def test_severity_in_alertmanager_vocabulary_and_level_kept(ours: Severity, theirs: str) -> None:
    labels = alert_labels(_alert(severity=ours))
    assert (labels["severity"], labels["level"]) == (theirs, ours.label)


def test_unbounded_values_are_annotations_not_labels() -> None:
    log_alert = Alert(
        timestamp=T0,
        hostname="web-1",
        severity=Severity.CRITICAL,
        metric="log_oom_kill",
        value=1.0,
        threshold=1.0,
        message="OOM kill of postgres",
        analyzer="log",
        labels=make_labels(
            pattern="oom_kill", process="postgres", pid="4242", line="Out of memory: ...",
            source="kmsg", count="3",
        ),
    )  # fmt: skip
    labels = alert_labels(log_alert)
    assert labels == {
        "alertname": "SysopsLogOomKill",
        "instance": "web-1",
        "severity": "critical",
        "level": "critical",
        "metric": "log_oom_kill",
        "pattern": "oom_kill",
        "process": "postgres",
    }
    notes = alert_annotations(log_alert, labels)
    assert (notes["pid"], notes["line"], notes["source"], notes["count"]) == (
        "4242",
        "Out of memory: ...",
        "kmsg",
        "3",
    )
    # two lines of one pattern are one alert in Alertmanager, not two
    other = dataclasses.replace(
        log_alert, labels=make_labels(pattern="oom_kill", process="postgres", pid="9")
    )
    assert alert_labels(other) == labels


def test_instance_and_static_labels() -> None:
    labels = alert_labels(_alert(), instance="web-1:9845", static={"env": "prod", "device": "x"})
    assert labels["instance"] == "web-1:9845"
    assert labels["env"] == "prod"
    assert labels["device"] == "sda1"  # the alert's own label wins over a static one


def test_summary_description_runbook_templates_per_metric_or_alertname() -> None:
    cfg = AlertmanagerChannelConfig(
        summary="{metric} on {instance}",
        descriptions={"SysopsDiskUsagePercentThreshold": "{mountpoint} at {value}%"},
        runbook_urls={"*": "https://wiki/{alertname}", "cpu_usage_percent": "https://wiki/cpu"},
    )
    alert = _alert()
    notes = alert_annotations(alert, alert_labels(alert), cfg)
    assert notes["summary"] == "disk_usage_percent on web-1"
    assert notes["description"] == "/ at 91.5%"
    assert notes["runbook_url"] == "https://wiki/SysopsDiskUsagePercentThreshold"
    # an unknown placeholder is left empty, never an error at send time
    cfg = AlertmanagerChannelConfig(summary="{nope}x")
    assert alert_annotations(alert, alert_labels(alert), cfg)["summary"] == "x"


def test_bad_template_is_a_config_problem() -> None:
    text = '[alerting.alertmanager]\nurl = "http://am:9093"\nsummary = "{oops"\n'
    problems = load_config(text=text, env={}).problems
    assert [p.path for p in problems] == ["alerting.alertmanager.summary"]


async def test_every_url_receives_every_alert_and_one_failure_is_retried() -> None:
    seen: List[str] = []

    def handler(request: httpclient.Request) -> httpclient.Response:
        seen.append(request.url.host)
        return response(503 if request.url.host == "am2.test" else 200)

    clock = VirtualClock(T0)
    channel = _channel(handler, clock, urls=["http://am2.test:9093", "http://am.test:9093"])
    try:
        with pytest.raises(ChannelError) as info:
            await channel.send([_alert()])
        assert info.value.retryable
        assert seen == ["am.test", "am2.test"]  # the duplicate URL is sent to once
    finally:
        await channel.aclose()


async def test_basic_auth_and_bearer_token_from_files(tmp_path: Any) -> None:
    headers: List[str] = []

    def handler(request: httpclient.Request) -> httpclient.Response:
        headers.append(request.headers.get("authorization", ""))
        return response(200)

    secret = tmp_path / "secret"
    secret.write_text("t0ken\n")
    clock = VirtualClock(T0)
    for cfg, expected in (
        ({"bearer_token_file": str(secret)}, "Bearer t0ken"),
        ({"bearer_token": "inline"}, "Bearer inline"),
        (
            {"basic_auth_username": "u", "basic_auth_password_file": str(secret)},
            "Basic dTp0MGtlbg==",  # u:t0ken
        ),
    ):
        channel = _channel(handler, clock, **cfg)
        try:
            await channel.send([_alert()])
        finally:
            await channel.aclose()
        assert headers[-1] == expected


def test_unreadable_secret_file_is_a_clear_final_error(tmp_path: Any) -> None:
    cfg = AlertmanagerChannelConfig(url="http://am:9093", bearer_token_file=str(tmp_path / "no"))
    with pytest.raises(ChannelError, match="bearer_token_file") as info:
        AlertmanagerChannel(cfg, clock=VirtualClock(T0))
    assert not info.value.retryable


def test_auth_settings_that_exclude_each_other() -> None:
    cfg = AlertmanagerChannelConfig(
        url="http://am", bearer_token="a", bearer_token_file="/x", basic_auth_username="u"
    )
    paths = [p.path for p in cfg.problems("alerting.alertmanager")]
    assert paths == [
        "alerting.alertmanager.bearer_token_file",
        "alerting.alertmanager.bearer_token",
    ]
    assert AlertmanagerChannelConfig(urls=["http://am"]).problems("a") == []


def test_secrets_are_redacted_from_errors() -> None:
    cfg = AlertmanagerChannelConfig(url="http://am", bearer_token="t0psecret")
    channel = AlertmanagerChannel(cfg, clock=VirtualClock(T0))
    assert "t0psecret" not in channel.redactor("failed with t0psecret")
