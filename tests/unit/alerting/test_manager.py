"""The alert manager on a VirtualClock, with in-memory channels."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import AsyncIterator, List, Optional, Sequence, Tuple

import pytest

from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.alerting.manager import AlertManager
from sysops_agent.alerting.outbox import Outbox
from sysops_agent.alerting.ratelimit import SUMMARY_METRIC
from sysops_agent.channels.base import ChannelError
from sysops_agent.channels.registry import build_alert_manager
from sysops_agent.clock import VirtualClock
from sysops_agent.config import load_config
from sysops_agent.model import Alert, AlertState, Severity
from sysops_agent.redact import Redactor

INF, W, C, E = Severity.INFO, Severity.WARN, Severity.CRITICAL, Severity.EMERGENCY


class MemoryChannel:
    """Records what it is asked to send; can fail or hang on demand."""

    def __init__(
        self,
        name: str,
        *,
        batch: bool = True,
        min_severity: Severity = W,
        fail: Optional[ChannelError] = None,
        hang: bool = False,
    ) -> None:
        self.name = name
        self.supports_batch = batch
        self.min_severity = min_severity
        self.rate_limited = True
        self.disabled: Optional[str] = None
        self.fail = fail
        self.hang = hang
        self.sent: List[Tuple[float, List[Alert]]] = []
        self.attempts = 0
        self.closed = False
        self.clock: Optional[VirtualClock] = None

    async def send(self, alerts: Sequence[Alert], *, mention: bool = False) -> None:
        self.attempts += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.fail is not None:
            raise self.fail
        assert self.clock is not None
        self.sent.append((self.clock.monotonic(), list(alerts)))

    async def aclose(self) -> None:
        self.closed = True

    @property
    def alerts(self) -> List[Alert]:
        return [a for _, batch in self.sent for a in batch]


def mk(
    metric: str = "cpu_usage_percent",
    severity: Severity = W,
    host: str = "web1",
    state: AlertState = AlertState.FIRING,
) -> Alert:
    return Alert(
        timestamp=1_700_000_000.0,
        hostname=host,
        severity=severity,
        metric=metric,
        value=95.0,
        threshold=90.0,
        message=f"{metric} high",
        analyzer="threshold",
        state=state,
    )


async def settle() -> None:
    """Let every runnable task run until it waits (on the clock or on INF/O)."""
    for _ in range(100):
        await asyncio.sleep(0)


async def run_for(clock: VirtualClock, seconds: float) -> None:
    """Advance virtual time, stopping at every deadline so woken tasks run first."""
    target = clock.monotonic() + seconds
    while True:
        await settle()
        deadline = clock.next_deadline()
        if deadline is None:
            break
        step = deadline - clock.time()
        if clock.monotonic() + step > target + 1e-9:
            break
        await clock.advance(step)
    await clock.advance(target - clock.monotonic())
    await settle()


class Rig:
    def __init__(self, channels: List[MemoryChannel], **cfg: object) -> None:
        self.clock = VirtualClock()
        self.config = PipelineConfig(**cfg)  # type: ignore[arg-type]
        for ch in channels:
            ch.clock = self.clock
        self.channels = channels
        self.manager = AlertManager(self.config, channels, self.clock)
        self.task: Optional[asyncio.Task[None]] = None

    async def start(self) -> None:
        self.task = asyncio.ensure_future(self.manager.run())
        await settle()

    async def advance(self, seconds: float) -> None:
        await run_for(self.clock, seconds)

    async def submit(self, *alerts: Alert) -> None:
        for a in alerts:
            self.manager.submit(a)
        await settle()

    async def stop(self, timeout: float = 10.0) -> None:
        closing = asyncio.ensure_future(self.manager.close(timeout))
        while not closing.done():
            await run_for(self.clock, 0.5)
        await closing
        assert self.task is not None
        await asyncio.wait_for(self.task, 1.0)


@pytest.fixture
async def rig_factory() -> AsyncIterator[List[Rig]]:
    rigs: List[Rig] = []
    yield rigs
    for r in rigs:
        if r.task is not None and not r.task.done():
            await r.stop()


async def make(rigs: List[Rig], channels: List[MemoryChannel], **cfg: object) -> Rig:
    r = Rig(channels, **cfg)
    rigs.append(r)
    await r.start()
    return r


async def test_dedup_then_group(rig_factory: List[Rig]) -> None:
    slack = MemoryChannel("slack")
    r = await make(rig_factory, [slack])
    await r.submit(mk(), mk(), mk("disk_usage_percent"))
    assert slack.sent == []  # waiting for the group window
    await r.advance(4.9)
    assert slack.sent == []
    await r.advance(0.1)
    assert len(slack.sent) == 1
    t, batch = slack.sent[0]
    assert t == pytest.approx(5.0)
    assert [a.metric for a in batch] == ["cpu_usage_percent", "disk_usage_percent"]
    assert r.manager.deduplicated == 1
    assert r.manager.counters() == {"slack": (2, 0)}


async def test_groups_are_per_host(rig_factory: List[Rig]) -> None:
    slack = MemoryChannel("slack")
    r = await make(rig_factory, [slack])
    await r.submit(mk(host="a"))
    await r.advance(2)
    await r.submit(mk("load", host="b"), mk("mem", host="a"))
    await r.advance(3)
    assert [(t, [a.hostname for a in b]) for t, b in slack.sent] == [(5.0, ["a", "a"])]
    await r.advance(2)
    assert [[a.hostname for a in b] for _, b in slack.sent] == [["a", "a"], ["b"]]


async def test_non_batch_channel_sends_at_once_one_by_one(rig_factory: List[Rig]) -> None:
    hook = MemoryChannel("webhook", batch=False)
    r = await make(rig_factory, [hook])
    await r.submit(mk("a"), mk("b"))
    assert [(t, len(b)) for t, b in hook.sent] == [(0.0, 1), (0.0, 1)]


async def test_routing(rig_factory: List[Rig], caplog: pytest.LogCaptureFixture) -> None:
    console = MemoryChannel("console", batch=False, min_severity=INF)
    slack = MemoryChannel("slack", batch=False)
    pager = MemoryChannel("pager", batch=False, min_severity=C)
    caplog.set_level(logging.INFO, "sysops_agent.alerting")
    r = await make(rig_factory, [console, slack, pager], warn_channels=["console"])
    await r.submit(mk("info", INF), mk("warn", W), mk("crit", C), mk("emerg", E))
    assert [a.metric for a in console.alerts] == ["info", "warn", "crit", "emerg"]
    assert [a.metric for a in slack.alerts] == ["crit", "emerg"]
    assert [a.metric for a in pager.alerts] == ["crit", "emerg"]
    assert any("info" in rec.getMessage() for rec in caplog.records)


async def test_rate_limit_summary_is_sent_when_a_token_returns(rig_factory: List[Rig]) -> None:
    hook = MemoryChannel("webhook", batch=False)
    r = await make(rig_factory, [hook])
    await r.submit(*[mk(f"m{i}") for i in range(12)])
    assert [a.metric for a in hook.alerts] == [f"m{i}" for i in range(5)]
    assert r.manager.suppressed() == {"webhook": 7}
    await r.advance(5.9)
    assert len(hook.alerts) == 5
    await r.advance(0.1)
    assert len(hook.alerts) == 6
    summary = hook.alerts[5]
    assert summary.metric == SUMMARY_METRIC
    assert summary.message.startswith("…and 7 more alerts suppressed")
    assert summary.value == 7
    # nothing else is pending
    await r.advance(60)
    assert len(hook.alerts) == 6
    # tokens have returned: new alerts flow again
    await r.submit(mk("later"))
    assert hook.alerts[-1].metric == "later"


async def test_emergency_bypasses_the_rate_limit(rig_factory: List[Rig]) -> None:
    hook = MemoryChannel("webhook", batch=False)
    r = await make(rig_factory, [hook], rate_limit_burst=1)
    await r.submit(mk("a"), mk("b"), mk("boom", E), mk("boom2", E))
    assert [a.metric for a in hook.alerts] == ["a", "boom", "boom2"]
    assert r.manager.suppressed() == {"webhook": 1}


async def test_resolved_passes_dedup(rig_factory: List[Rig]) -> None:
    hook = MemoryChannel("webhook", batch=False)
    r = await make(rig_factory, [hook])
    await r.submit(mk(), mk(state=AlertState.RESOLVED), mk())
    assert [a.state for a in hook.alerts] == [
        AlertState.FIRING,
        AlertState.RESOLVED,
        AlertState.FIRING,
    ]


async def test_hanging_channel_does_not_delay_a_healthy_one(rig_factory: List[Rig]) -> None:
    stuck = MemoryChannel("stuck", batch=False, hang=True)
    ok = MemoryChannel("ok", batch=False)
    r = await make(rig_factory, [stuck, ok], send_timeout_secs=10.0)
    await r.submit(mk("a"))
    await r.submit(mk("b"))
    assert [(t, a.metric) for t, b in ok.sent for a in b] == [(0.0, "a"), (0.0, "b")]
    assert stuck.attempts == 1
    # "a" times out after 10 s + 1 s grace and waits in the outbox; "b" is tried at once
    await r.advance(11)
    assert stuck.attempts == 2
    await r.advance(11)
    assert stuck.attempts == 3
    assert r.manager.counters() == {"stuck": (0, 0), "ok": (2, 0)}
    assert r.manager.pending() == {"stuck": 2, "ok": 0}


async def test_failing_channel_keeps_retrying_with_capped_backoff(
    rig_factory: List[Rig], caplog: pytest.LogCaptureFixture
) -> None:
    bad = MemoryChannel("bad", batch=False, fail=ChannelError("HTTP 500: boom", retryable=True))
    r = await make(rig_factory, [bad], retry_max_delay_secs=8.0)
    await r.submit(mk())
    assert bad.attempts == 1
    # 1, 2, 4, then capped at 8 s: never given up while the notification is relevant
    for expected_attempts, wait in ((2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 8.0), (7, 8.0)):
        await r.advance(wait - 0.01)
        assert bad.attempts == expected_attempts - 1
        await r.advance(0.01)
        assert bad.attempts == expected_attempts
    assert r.manager.counters() == {"bad": (0, 0)}
    assert r.manager.pending() == {"bad": 1}
    warnings = [rec for rec in caplog.records if "kept in the outbox" in rec.getMessage()]
    assert len(warnings) == 1  # said once per outage, not per attempt
    bad.fail = None
    await r.advance(8.0)
    assert len(bad.alerts) == 1 and r.manager.counters() == {"bad": (1, 0)}
    assert r.manager.pending() == {"bad": 0}


async def test_non_retryable_error_gives_the_notification_up(
    rig_factory: List[Rig], caplog: pytest.LogCaptureFixture
) -> None:
    bad = MemoryChannel("bad", batch=False, fail=ChannelError("HTTP 400: bad", retryable=False))
    r = await make(rig_factory, [bad])
    await r.submit(mk())
    await r.advance(60)
    assert bad.attempts == 1
    assert r.manager.counters() == {"bad": (0, 1)} and r.manager.pending() == {"bad": 0}
    assert any("refused after 1 attempt" in rec.getMessage() for rec in caplog.records)


async def test_429_retry_after_is_honoured(rig_factory: List[Rig]) -> None:
    ch = MemoryChannel(
        "slack", batch=False, fail=ChannelError("HTTP 429", retryable=True, retry_after=30.0)
    )
    r = await make(rig_factory, [ch])
    await r.submit(mk())
    ch.fail = None
    await r.advance(29.9)
    assert ch.alerts == []
    await r.advance(0.1)
    assert len(ch.alerts) == 1 and r.manager.counters() == {"slack": (1, 0)}


async def test_a_disabled_channel_is_not_attempted_and_its_alerts_wait(
    rig_factory: List[Rig],
) -> None:
    ch = MemoryChannel("discord", batch=False)
    ch.disabled = "HTTP 404"
    r = await make(rig_factory, [ch])
    await r.submit(mk("a"), mk("b"))
    await r.advance(60)
    assert ch.attempts == 0
    assert r.manager.counters() == {"discord": (0, 0)}
    assert r.manager.pending() == {"discord": 2}
    r.manager.reenable("configuration reloaded")
    await r.advance(0.1)
    assert [a.metric for a in ch.alerts] == ["a", "b"]
    assert r.manager.counters() == {"discord": (2, 0)}


async def test_close_flushes_groups_and_summaries(rig_factory: List[Rig]) -> None:
    slack = MemoryChannel("slack")
    r = await make(rig_factory, [slack], rate_limit_burst=2)
    await r.submit(mk("a"), mk("b"), mk("c"), mk("d"))
    assert slack.sent == []
    await r.stop()
    assert [a.metric for a in slack.alerts] == ["a", "b", SUMMARY_METRIC]
    assert slack.alerts[-1].message.startswith("…and 2 more alerts suppressed")
    assert slack.closed
    assert r.manager.counters() == {"slack": (3, 0)}


async def test_close_gives_up_on_a_hanging_channel_within_the_timeout(
    rig_factory: List[Rig],
) -> None:
    stuck = MemoryChannel("stuck", batch=False, hang=True)
    ok = MemoryChannel("ok", batch=False)
    r = await make(rig_factory, [stuck, ok], send_timeout_secs=60.0)
    await r.submit(mk("a"), mk("b"))
    start = r.clock.monotonic()
    await r.stop(timeout=3.0)
    assert r.clock.monotonic() - start <= 3.5
    assert r.manager.counters() == {"stuck": (0, 2), "ok": (2, 0)}
    assert stuck.closed and ok.closed


async def test_submit_after_close_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    clock = VirtualClock()
    ch = MemoryChannel("x")
    ch.clock = clock
    m = AlertManager(PipelineConfig(), [ch], clock)
    await m.close()
    m.submit(mk())
    assert any("closed" in rec.getMessage() for rec in caplog.records)


async def test_build_alert_manager_uses_console_when_nothing_is_enabled() -> None:
    res = load_config(None, text="[alerting.console]\nenabled = false\n")
    m = build_alert_manager(res.config.alerting, VirtualClock(), Redactor())
    assert m.channel_names == ["console"]
    await m.close()


async def test_build_alert_manager_with_enabled_channels() -> None:
    text = """
[alerting.console]
enabled = false
[alerting.slack]
enabled = true
webhook_url = "http://127.0.0.1:9/services/x"
[alerting.webhook]
enabled = true
url = "http://127.0.0.1:9/hook"
"""
    res = load_config(None, text=text)
    m = build_alert_manager(res.config.alerting, VirtualClock(), Redactor())
    assert m.channel_names == ["slack", "webhook"]
    await m.close()


def test_registry_build_channel() -> None:
    from sysops_agent.channels.registry import build_channel, channel_min_severity, channel_names

    res = load_config(None, text="[alerting.slack]\nmin_severity = 'critical'\n")
    assert {"console", "discord", "slack", "telegram", "webhook"} <= set(channel_names())
    ch = build_channel("slack", res.config.alerting, Redactor(), VirtualClock())
    assert ch.name == "slack" and ch.supports_batch
    assert channel_min_severity("slack", res.config.alerting) is C
    with pytest.raises(ValueError, match="unknown channel 'nope'"):
        build_channel("nope", res.config.alerting, Redactor(), VirtualClock())


async def test_end_to_end_over_http_on_the_system_clock() -> None:
    """Real clock, real sockets: a healthy webhook and a deleted Discord webhook."""
    from sysops_agent.clock import SystemClock
    from tests.support.httpserver import HttpTestServer, Reply

    async with (
        HttpTestServer(default=Reply(200, "")) as hook_srv,
        HttpTestServer(
            default=Reply(404, {"message": "Unknown Webhook", "code": 10015})
        ) as discord_srv,
    ):
        text = f"""
[alerting]
group_window_secs = 0.2
[alerting.console]
enabled = false
[alerting.webhook]
enabled = true
url = "{hook_srv.url("/hook")}"
[alerting.discord]
enabled = true
webhook_url = "{discord_srv.url("/api/webhooks/1/secret-token-value")}"
"""
        res = load_config(None, text=text)
        assert not res.problems
        m = build_alert_manager(res.config.alerting, SystemClock(), Redactor(res.secrets.values()))
        task = asyncio.ensure_future(m.run())
        m.submit(mk("a"))
        m.submit(mk("b", C))
        m.submit(mk("c", C))
        await hook_srv.wait_requests(3)
        await m.close(timeout=5.0)
        await asyncio.wait_for(task, 1.0)
    assert [r.json()["metric"] for r in hook_srv.requests] == ["a", "b", "c"]
    assert len(discord_srv.requests) == 1  # one grouped message, 404, disabled, no retry
    assert m.counters() == {"discord": (0, 3), "webhook": (3, 0)}


async def test_alerts_in_a_group_window_survive_a_crash(tmp_path: Path) -> None:
    """Issue 12 "nothing lost": what waits in a group window is in the outbox's held table;
    a run killed inside the window (no close) leaves it there, the next run sends it once,
    marked delayed with the time it was raised."""
    path = str(tmp_path / "outbox.db")
    cfg = PipelineConfig(group_window_secs=30.0)
    clock = VirtualClock()
    slack, hook = MemoryChannel("slack"), MemoryChannel("webhook", batch=False)
    for ch in (slack, hook):
        ch.clock = clock
    first = AlertManager(cfg, [slack, hook], clock, outbox=Outbox(path))
    task = asyncio.ensure_future(first.run())
    first.submit(mk("a"))
    first.submit(mk("b", C))
    await run_for(clock, 10.0)
    assert slack.sent == [] and [a.metric for a in hook.alerts] == ["a", "b"]
    assert first.outbox.held_count("slack") == 2 and first.outbox.held_count("webhook") == 0
    task.cancel()  # SIGKILL: no close, no flush
    with contextlib.suppress(asyncio.CancelledError):
        await task

    slack2, hook2 = MemoryChannel("slack"), MemoryChannel("webhook", batch=False)
    for ch in (slack2, hook2):
        ch.clock = clock
    second = AlertManager(cfg, [slack2, hook2], clock, outbox=Outbox(path))
    task = asyncio.ensure_future(second.run())
    await run_for(clock, 1.0)
    assert [[a.metric for a in batch] for _, batch in slack2.sent] == [["a", "b"]]
    assert all("(delayed notification, raised" in a.message for a in slack2.alerts)
    assert hook2.sent == []  # the webhook had them already
    assert second.outbox.held_count() == 0 and second.pending() == {"slack": 0, "webhook": 0}
    await run_for(clock, 60.0)
    assert len(slack2.sent) == 1  # once
    closing = asyncio.ensure_future(second.close(5.0))
    await run_for(clock, 1.0)
    await closing
    await asyncio.wait_for(task, 1.0)


async def test_a_group_sent_in_time_leaves_nothing_held(tmp_path: Path) -> None:
    clock = VirtualClock()
    slack = MemoryChannel("slack")
    slack.clock = clock
    outbox = Outbox(str(tmp_path / "outbox.db"))
    m = AlertManager(PipelineConfig(group_window_secs=5.0), [slack], clock, outbox=outbox)
    task = asyncio.ensure_future(m.run())
    m.submit(mk("a"))
    await run_for(clock, 1.0)
    assert outbox.held_count("slack") == 1
    await run_for(clock, 5.0)
    assert [a.metric for a in slack.alerts] == ["a"] and outbox.held_count() == 0
    # a second run finds nothing to send again
    again = Outbox(str(tmp_path / "outbox.db"))
    assert again.take_held() == [] and again.pending() == 0
    again.close()
    closing = asyncio.ensure_future(m.close(5.0))
    await run_for(clock, 1.0)
    await closing
    await asyncio.wait_for(task, 1.0)


def test_the_outbox_files_are_private(tmp_path: Path) -> None:
    """They hold the alerts' texts: 0600, like the history database, whatever the umask."""
    import os
    import stat

    path = tmp_path / "outbox.db"
    old = os.umask(0o022)
    try:
        Outbox(str(path)).close()
        (tmp_path / "outbox.db-wal").write_bytes(b"")  # left by a crash, too open
        os.chmod(tmp_path / "outbox.db-wal", 0o644)
        outbox = Outbox(str(path))
        try:
            for name in ("outbox.db", "outbox.db-wal", "outbox.db-shm"):
                assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
        finally:
            outbox.close()
    finally:
        os.umask(old)
