"""How the manager drives its stage lists, and where the mention is decided."""

from __future__ import annotations

import asyncio
import inspect
from typing import List, Optional, Sequence, Tuple

import pytest

from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.alerting.group import GroupStage, messages
from sysops_agent.alerting.manager import AlertManager
from sysops_agent.alerting.pipeline import run_stages
from sysops_agent.alerting.ratelimit import SUMMARY_METRIC, RateLimitStage
from sysops_agent.channels import discord, slack
from sysops_agent.clock import VirtualClock
from sysops_agent.model import Alert, AlertState, Severity

W, C, E = Severity.WARN, Severity.CRITICAL, Severity.EMERGENCY


def mk(metric: str = "m", severity: Severity = W, host: str = "web1") -> Alert:
    return Alert(0.0, host, severity, metric, 1.0, 0.0, "msg", "threshold")


@pytest.mark.parametrize(
    ("hosts", "batch", "expected"),
    [
        ([], True, []),
        (["a", "a", "b", "a"], True, [["a", "a"], ["b"], ["a"]]),
        (["a", "a", "b"], False, [["a"], ["a"], ["b"]]),
    ],
)
def test_messages_are_runs_of_one_group_key(
    hosts: List[str], batch: bool, expected: List[List[str]]
) -> None:
    alerts = [mk(host=h) for h in hosts]
    assert [[a.hostname for a in m] for m in messages(alerts, batch)] == expected


def test_a_summary_and_the_next_alert_stay_separate_messages_with_window_0() -> None:
    """Each stage gets the previous stage's alerts one at a time."""
    limiter = RateLimitStage("slack", per_minute=60.0, burst=2, now=0.0)
    stages = [limiter, GroupStage(0.0)]

    def metrics(batches: List[List[Alert]]) -> List[List[str]]:
        return [[a.metric for a in batch] for batch in batches]

    assert metrics(run_stages(stages, [mk("a")], 0.0)) == [["a"]]
    assert metrics(run_stages(stages, [mk("b")], 0.0)) == [["b"]]
    assert metrics(run_stages(stages, [mk("x")], 0.5)) == []  # held back
    # two tokens are back: the summary takes one, c the other; two messages, not one
    assert metrics(run_stages(stages, [mk("c")], 3.0)) == [[SUMMARY_METRIC], ["c"]]


def test_flush_lets_out_everything_in_stage_order() -> None:
    limiter = RateLimitStage("slack", per_minute=1.0, burst=1, now=0.0)
    group = GroupStage(60.0)
    assert run_stages([limiter, group], [mk("a")], 0.0) == []
    assert run_stages([limiter, group], [mk("b")], 1.0) == []
    out = run_stages([limiter, group], [], 2.0, flush=True)
    assert [[a.metric for a in batch] for batch in out] == [["a", SUMMARY_METRIC]]


def test_submit_is_synchronous() -> None:
    assert not inspect.iscoroutinefunction(AlertManager.submit)


class MentionRecorder:
    name = "rec"
    supports_batch = True
    rate_limited = True
    min_severity = W

    def __init__(self) -> None:
        self.disabled: Optional[str] = None
        self.sent: List[Tuple[List[str], bool]] = []

    async def send(self, alerts: Sequence[Alert], *, mention: bool = False) -> None:
        self.sent.append(([a.metric for a in alerts], mention))

    async def aclose(self) -> None:
        return None


async def test_the_pipeline_decides_the_mention_per_message() -> None:
    clock = VirtualClock()
    rec = MentionRecorder()
    manager = AlertManager(PipelineConfig(), [rec], clock)
    task = asyncio.ensure_future(manager.run())
    try:
        manager.submit(mk("w1"))
        await clock.advance(6)
        manager.submit(mk("w2"))
        manager.submit(mk("c1", C))
        await clock.advance(6)
        resolved = mk("c2", E).evolve(state=AlertState.RESOLVED)
        manager.submit(resolved)
        await clock.advance(6)
    finally:
        await manager.close(5.0)
        await asyncio.wait_for(task, 1.0)
    assert rec.sent == [(["w1"], False), (["w2", "c1"], True), (["c2"], False)]


def test_slack_and_discord_mention_only_when_told() -> None:
    crit = [mk("c", C)]
    assert "<!here>" not in str(slack.build_payload(crit, mention="<!here>"))
    told = slack.build_payload(crit, mention="<!here>", with_mention=True)
    assert told["blocks"][0]["text"]["text"] == "<!here>"
    assert "content" not in discord.build_payload(crit, user_ids=["111"])
    assert discord.build_payload(crit, user_ids=["111"], mention=True)["content"] == "<@111>"
