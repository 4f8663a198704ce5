"""Pure decisions of the pipeline stages, from tables with an explicit ``now``."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import pytest

from sysops_agent.alerting.group import GroupStage
from sysops_agent.alerting.ratelimit import (
    SUMMARY_METRIC,
    Bucket,
    RateLimitStage,
    next_token_at,
    take_token,
)
from sysops_agent.alerting.retry import backoff_delay, retry_delay
from sysops_agent.alerting.route import route, wants_mention
from sysops_agent.channels.base import ChannelError
from sysops_agent.channels.http import Disposition, classify_status, parse_retry_after
from sysops_agent.channels.registry import AlertingConfig, channel_min_severity
from sysops_agent.channels.slack import SlackChannelConfig
from sysops_agent.model import Alert, AlertState, Severity, make_labels

INF, W, C, E = Severity.INFO, Severity.WARN, Severity.CRITICAL, Severity.EMERGENCY


def alert(
    severity: Severity = W,
    metric: str = "cpu_usage_percent",
    host: str = "web1",
    state: AlertState = AlertState.FIRING,
) -> Alert:
    return Alert(
        timestamp=1_700_000_000.0,
        hostname=host,
        severity=severity,
        metric=metric,
        value=1.0,
        threshold=0.0,
        message="m",
        analyzer="threshold",
        state=state,
    )


# -- route ----------------------------------------------------------------------

MINS: Dict[str, Severity] = {"console": INF, "slack": W, "discord": W, "pager": C}

ROUTES: List[
    Tuple[str, Severity, AlertState, Tuple[str, ...], Tuple[str, ...], bool, bool, bool]
] = [
    # id, severity, state, warn_channels, expected channels, mention, bypass, log
    ("info: log + opt-in only", INF, AlertState.FIRING, (), ("console",), False, False, True),
    (
        "warn: all that allow warn",
        W,
        AlertState.FIRING,
        (),
        ("console", "slack", "discord"),
        False,
        False,
        False,
    ),
    (
        "warn: configured channels",
        W,
        AlertState.FIRING,
        ("slack",),
        ("slack",),
        False,
        False,
        False,
    ),
    (
        "critical: all + mention",
        C,
        AlertState.FIRING,
        ("slack",),
        ("console", "slack", "discord", "pager"),
        True,
        False,
        False,
    ),
    (
        "critical resolved: no mention",
        C,
        AlertState.RESOLVED,
        (),
        ("console", "slack", "discord", "pager"),
        False,
        False,
        False,
    ),
    (
        "emergency: all, bypass",
        E,
        AlertState.FIRING,
        ("slack",),
        ("console", "slack", "discord", "pager"),
        True,
        True,
        False,
    ),
]


@pytest.mark.parametrize("case", ROUTES, ids=[r[0] for r in ROUTES])
def test_route_table(
    case: Tuple[str, Severity, AlertState, Tuple[str, ...], Tuple[str, ...], bool, bool, bool],
) -> None:
    _, sev, state, warn_channels, channels, mention, bypass, log = case
    d = route(alert(sev, state=state), MINS, warn_channels)
    assert d.channels == channels
    assert (d.mention, d.bypass_rate_limit, d.log) == (mention, bypass, log)


def test_channel_min_severity_from_config() -> None:
    cfg = AlertingConfig(slack=SlackChannelConfig(min_severity="critical"))
    assert channel_min_severity("slack", cfg) is C
    assert channel_min_severity("console", cfg) is INF
    assert channel_min_severity("no-such-channel", cfg) is W


def test_wants_mention() -> None:
    assert not wants_mention([alert(W), alert(W)])
    assert wants_mention([alert(W), alert(C)])
    assert not wants_mention([alert(E, state=AlertState.RESOLVED)])


# -- rate limit -----------------------------------------------------------------

# (now, expected taken) with 10/min (1 per 6 s), burst 5, full at t=0
BUCKET_STEPS: List[Tuple[float, bool]] = [
    (0, True),
    (0, True),
    (0, True),
    (0, True),
    (0, True),
    (0, False),
    (5.9, False),
    (6.0, True),
    (6.0, False),
    (12.0, True),
    (100.0, True),  # refilled to the burst, not beyond
    (100.0, True),
    (100.0, True),
    (100.0, True),
    (100.0, True),
    (100.0, False),
]


def test_token_bucket_table() -> None:
    b = Bucket(5.0, 0.0)
    for now, expected in BUCKET_STEPS:
        ok, b = take_token(b, now, 10.0, 5)
        assert ok is expected, now


def test_next_token_at() -> None:
    assert next_token_at(Bucket(0.0, 10.0), 10.0) == pytest.approx(16.0)
    assert next_token_at(Bucket(0.5, 10.0), 10.0) == pytest.approx(13.0)
    assert next_token_at(Bucket(2.0, 10.0), 10.0) == 10.0


def test_bucket_ignores_time_going_back() -> None:
    ok, b = take_token(Bucket(0.0, 50.0), 20.0, 10.0, 5)
    assert not ok and b == Bucket(0.0, 50.0)


def test_rate_limit_summary() -> None:
    stage = RateLimitStage("slack", 10.0, 5, now=0.0)
    admitted = [stage.admit(alert(metric=f"m{i % 3}"), 0.0) for i in range(12)]
    assert admitted == [True] * 5 + [False] * 7
    assert stage.held == 7 and stage.suppressed_total == 7
    assert stage.next_summary_at() == pytest.approx(6.0)
    assert stage.summary(5.0, 123.0) is None  # no token yet
    s = stage.summary(6.0, 123.0)
    assert s is not None
    assert s.metric == SUMMARY_METRIC and s.value == 7.0 and s.timestamp == 123.0
    assert s.message.startswith("…and 7 more alerts suppressed")
    assert "m" in s.message and dict(s.labels) == {"channel": "slack"}
    assert stage.held == 0 and stage.summary(100.0, 0.0) is None


def test_rate_limit_summary_severity_is_the_worst_held() -> None:
    stage = RateLimitStage("x", 10.0, 1, now=0.0)
    assert stage.admit(alert(W), 0.0)
    stage.admit(alert(C), 0.0)
    stage.admit(alert(W), 0.0)
    s = stage.summary(0.0, 0.0, force=True)
    assert s is not None and s.severity is C and s.message.startswith("…and 2 more alerts")


def test_emergency_bypass_takes_no_token() -> None:
    stage = RateLimitStage("x", 10.0, 1, now=0.0)
    for _ in range(10):
        assert stage.admit(alert(E), 0.0, bypass=True)
    assert stage.admit(alert(W), 0.0)
    assert not stage.admit(alert(W), 0.0)


# -- group ----------------------------------------------------------------------


def test_group_table() -> None:
    g = GroupStage(5.0)
    assert g.add(alert(host="a", metric="1"), 0.0) == []
    assert g.add(alert(host="b", metric="2"), 1.0) == []
    assert g.add(alert(host="a", metric="3"), 4.9) == []
    assert g.next_due() == 5.0
    assert g.due(4.99) == []
    due = g.due(5.0)
    assert [[a.metric for a in batch] for batch in due] == [["1", "3"]]
    assert g.next_due() == 6.0
    assert [[a.metric for a in b] for b in g.due(6.0)] == [["2"]]
    assert g.next_due() is None and len(g) == 0


def test_group_due_at_next_due_despite_float_rounding() -> None:
    g = GroupStage(5.0)
    g.add(alert(), 0.1)
    deadline = g.next_due()
    assert deadline is not None and len(g.due(deadline)) == 1


def test_group_zero_window_and_max_size() -> None:
    assert len(GroupStage(0.0).add(alert(), 3.0)) == 1
    g = GroupStage(5.0, max_size=3)
    assert g.add(alert(metric="1"), 0) == [] and g.add(alert(metric="2"), 0) == []
    full = g.add(alert(metric="3"), 0)
    assert [len(b) for b in full] == [3]


def test_group_drain() -> None:
    g = GroupStage(5.0)
    g.add(alert(host="b"), 1.0)
    g.add(alert(host="a"), 2.0)
    assert [b[0].hostname for b in g.drain()] == ["b", "a"]
    assert g.next_due() is None


# -- retry ----------------------------------------------------------------------

STATUSES = [
    (200, Disposition.OK),
    (204, Disposition.OK),
    (299, Disposition.OK),
    (301, Disposition.FINAL),
    (400, Disposition.FINAL),
    (401, Disposition.FINAL),
    (404, Disposition.FINAL),
    (408, Disposition.FINAL),
    (429, Disposition.RETRY),
    (500, Disposition.RETRY),
    (503, Disposition.RETRY),
    (599, Disposition.RETRY),
    (100, Disposition.FINAL),
]


@pytest.mark.parametrize("status,expected", STATUSES)
def test_classify_status(status: int, expected: Disposition) -> None:
    assert classify_status(status) is expected


RETRIES: List[Tuple[str, int, ChannelError, Optional[float]]] = [
    ("first failure: base", 1, ChannelError("x", retryable=True), 1.0),
    ("second: doubled", 2, ChannelError("x", retryable=True), 2.0),
    ("third: 4", 3, ChannelError("x", retryable=True), 4.0),
    ("out of retries", 4, ChannelError("x", retryable=True), None),
    ("final error", 1, ChannelError("x", retryable=False), None),
    ("retry-after wins", 1, ChannelError("x", retryable=True, retry_after=7.5), 7.5),
    ("retry-after 0", 2, ChannelError("x", retryable=True, retry_after=0.0), 0.0),
    ("retry-after too long", 1, ChannelError("x", retryable=True, retry_after=301.0), None),
]


@pytest.mark.parametrize("case", RETRIES, ids=[r[0] for r in RETRIES])
def test_retry_delay(case: Tuple[str, int, ChannelError, Optional[float]]) -> None:
    _, failures, error, expected = case
    assert retry_delay(failures, error, retries=3, base=1.0, cap=60.0) == expected


def test_backoff_is_capped() -> None:
    assert backoff_delay(10, 1.0, 60.0) == 60.0
    assert backoff_delay(3, 0.5, 60.0) == 2.0


RETRY_AFTER = [
    ("header seconds", {"retry-after": "7"}, None, 7.0),
    ("header float", {"Retry-After": "1.5"}, None, 1.5),
    ("discord body", {}, {"retry_after": 0.25, "global": False}, 0.25),
    ("telegram body", {}, {"ok": False, "parameters": {"retry_after": 12}}, 12.0),
    ("header over body", {"retry-after": "3"}, {"retry_after": 9}, 3.0),
    ("http date", {"retry-after": "Tue, 14 Nov 2023 22:14:00 GMT"}, None, 40.0),
    ("garbage", {"retry-after": "soon"}, {"retry_after": "x"}, None),
    ("negative", {"retry-after": "-5"}, None, 0.0),
    ("bool is not a number", {}, {"retry_after": True}, None),
    ("nothing", {}, None, None),
]


@pytest.mark.parametrize("case", RETRY_AFTER, ids=[r[0] for r in RETRY_AFTER])
def test_parse_retry_after(case: Tuple[str, Dict[str, str], object, Optional[float]]) -> None:
    _, headers, body, expected = case
    # 2023-11-14T22:13:20Z
    assert parse_retry_after(headers, body, now=1_700_000_000.0) == expected


def test_summary_labels() -> None:
    stage = RateLimitStage("discord", 10.0, 1, now=0.0)
    stage.admit(alert(), 0.0)
    stage.admit(alert(metric="disk"), 0.0)
    s = stage.summary(0.0, 5.0, force=True)
    assert s is not None and s.labels == make_labels(channel="discord")
    assert "disk ×1" in s.message and "more alert suppressed" in s.message


def test_unknown_warn_channel_is_a_config_problem() -> None:
    from sysops_agent.config import load_config

    res = load_config(None, text='[alerting]\nwarn_channels = ["slack", "slak"]\n')
    problems = [str(p) for p in res.problems]
    assert any("alerting.warn_channels" in p and "'slak'" in p for p in problems)
    assert not any("'slack'" in p for p in problems)


def test_channel_settings_that_the_platform_would_reject() -> None:
    from sysops_agent.config import load_config

    text = """
[alerting.discord]
mention_user_ids = ["123456789012345678", "@bob"]
mention_role_ids = ["everyone"]
username = "Discord Alerts"
[alerting.slack]
mention = "@here"
"""
    res = load_config(None, text=text)
    paths = sorted(p.path for p in res.problems)
    assert paths == [
        "alerting.discord.mention_role_ids[0]",
        "alerting.discord.mention_user_ids[1]",
        "alerting.discord.username",
        "alerting.slack.mention",
    ]
    d = res.config.alerting.discord
    assert d.mention_user_ids == ["123456789012345678"] and d.username == "SysOps Agent"
    ok = load_config(None, text='[alerting.slack]\nmention = "<!here> <@U123>"\n')
    assert ok.problems == [] and ok.config.alerting.slack.mention == "<!here> <@U123>"
