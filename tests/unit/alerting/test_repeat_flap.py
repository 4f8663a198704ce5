"""Repeat/ack and flap damping: pure decisions from tables, and the stages on explicit ``now``."""

from __future__ import annotations

import json
from typing import List, Optional, Tuple

import pytest

from sysops_agent.alerting.firing import FiringStage
from sysops_agent.alerting.flap import FlapStage, FlapState, flap_settle, flap_step
from sysops_agent.alerting.repeat import RepeatStage, Tracked, repeat_due, still_firing_for
from sysops_agent.model import Alert, AlertState, Severity

W, C, E = Severity.WARN, Severity.CRITICAL, Severity.EMERGENCY
H = 3600.0


def alert(severity: Severity = C, state: AlertState = AlertState.FIRING) -> Alert:
    return Alert(
        timestamp=1_700_000_000.0,
        hostname="h",
        severity=severity,
        metric="memory_usage_percent",
        value=95.0,
        threshold=90.0,
        message="memory usage 95.0% exceeds the critical level 90%",
        analyzer="threshold",
        state=state,
    )


@pytest.mark.parametrize(
    ("last_sent", "now", "interval", "ack", "due"),
    [
        (0.0, 4 * H - 1, 4 * H, None, False),
        (0.0, 4 * H, 4 * H, None, True),
        (0.0, 40 * H, 0.0, None, False),  # 0 = never
        (0.0, 8 * H, 4 * H, ("ops", ""), False),  # acknowledged
    ],
)
def test_repeat_due(
    last_sent: float, now: float, interval: float, ack: Optional[Tuple[str, str]], due: bool
) -> None:
    assert repeat_due(Tracked(alert(), 0.0, last_sent, ack), now, interval) is due


@pytest.mark.parametrize(
    ("secs", "text"),
    [(45 * 60, "45 min"), (6 * H, "6 h"), (H + 30 * 60, "1 h 30 min"), (50 * H, "2 d 2 h")],
)
def test_still_firing_for(secs: float, text: str) -> None:
    assert still_firing_for(secs) == f"still firing for {text}"


def test_repeat_then_ack_stops_it() -> None:
    stage = RepeatStage(4 * H)
    a = alert()
    assert stage([a], 0.0) == [a]
    assert stage.next_due() == 4 * H
    [again] = stage([], 4 * H)
    assert again.id == a.id and "still firing for 4 h" in again.message
    stage.ack(a.id[:6], "ops", "on it")
    [note] = stage([], 4 * H + 1)
    assert "acknowledged by ops: on it" in note.message
    assert stage.next_due() is None and stage([], 100 * H) == []
    with pytest.raises(KeyError):
        stage.ack(a.id, "ops", "")  # already
    stage([a.evolve(state=AlertState.RESOLVED)], 101 * H)
    assert stage.tracked == {}


def test_warn_does_not_repeat_and_an_escalation_starts_afresh() -> None:
    stage = RepeatStage(H)
    stage([alert(W)], 0.0)
    assert stage.next_due() is None
    stage([alert(C)], 10.0)
    stage([alert(E)], 20.0)
    assert stage.next_due() == 20.0 + H
    with pytest.raises(KeyError):
        stage.ack("zzz", "ops", "")


def test_flap_step_table() -> None:
    window, n = 600.0, 3
    state = FlapState()
    sent: List[Optional[str]] = []
    for i, st in enumerate([AlertState.FIRING, AlertState.RESOLVED] * 3):
        out, state = flap_step(state, alert(state=st), float(i * 10), n, window)
        sent.append(None if out is None else out.message.split(":")[0])
    # three changes go out, the fourth is the flapping notice, then silence
    assert sent[:3] == ["memory usage 95.0% exceeds the critical level 90%"] * 3
    assert sent[3] == "flapping"
    assert sent[4:] == [None, None]
    assert flap_settle(state, 50.0 + window - 1, window)[0] is None
    notice, state = flap_settle(state, 50.0 + window, window)
    assert notice is not None and notice.state is AlertState.RESOLVED
    assert notice.message.startswith("stable again for 10 min, now resolved")
    assert state == FlapState()


def test_changes_spread_wider_than_the_window_are_no_flapping() -> None:
    state = FlapState()
    for i in range(20):
        out, state = flap_step(state, alert(), i * 200.0, 3, 600.0)
        assert out is not None and not state.flapping


def test_flap_stage_due_time() -> None:
    stage = FlapStage(2, 60.0)
    for t in (0.0, 1.0, 2.0):
        stage([alert()], t)
    assert stage.next_due() == 62.0 and len(stage.flapping()) == 1
    [notice] = stage([], 62.0)
    assert notice.message.startswith("stable again for 1 min, now critical")
    assert stage.next_due() is None and stage.states == {}


def test_repeat_state_round_trip_keeps_acks_and_the_schedule_across_clocks() -> None:
    """Saved with one monotonic clock (offset 1000), restored with another (offset 5000):
    the wall times are the same, an ack stays, the repeat stays on its schedule."""
    before = RepeatStage(60.0)
    a = alert()
    before([a], 10.0)
    before.ack(a.id[:8], "root", "on it")
    saved = json.loads(json.dumps(before.snapshot(1000.0)))
    after = RepeatStage(60.0)
    assert after.restore(saved, 5000.0, lambda ident: True) == 1
    [t] = after.tracked.values()
    assert (t.since, t.last_sent, t.ack) == (10.0 - 4000.0, 10.0 - 4000.0, ("root", "on it"))
    assert after.acks() and after.next_due() is None  # acked: no repeat
    assert after([], t.last_sent + 600.0) == []
    assert RepeatStage(60.0).restore(saved, 5000.0, lambda ident: False) == 0


def test_firing_table_round_trip_keeps_since_and_id() -> None:
    before = FiringStage()
    a = alert()
    before([a], 0.0)
    saved = json.loads(json.dumps(before.snapshot()))
    after = FiringStage()
    assert after.restore(saved, lambda ident: True) == 1
    assert after.firing == before.firing
    after([a.evolve(state=AlertState.RESOLVED)], 1.0)
    assert after.firing == {}
