"""Silences, maintenance windows, inhibition and the firing table: pure decisions from tables."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from sysops_agent.alerting.config import (
    InhibitRule,
    MaintenanceWindow,
    PipelineConfig,
    default_inhibit_rules,
)
from sysops_agent.alerting.firing import firing_update
from sysops_agent.alerting.inhibit import InhibitStage, compile_rules, inhibited
from sysops_agent.alerting.maintenance import MaintenanceStage, next_opening, occurrence
from sysops_agent.alerting.matchers import identity, mutes, parse_matcher, parse_matchers
from sysops_agent.alerting.mute import MuteState, mute_decision
from sysops_agent.alerting.pipeline import build_stages
from sysops_agent.alerting.ratelimit import SUMMARY_ANALYZER
from sysops_agent.alerting.silence import SilenceBook, SilenceStage
from sysops_agent.model import EVENT_ANALYZERS, Alert, AlertState, Severity, make_labels
from sysops_agent.schema import Builder

W, C, E = Severity.WARN, Severity.CRITICAL, Severity.EMERGENCY
T0 = 1_700_000_000.0


def alert(
    severity: Severity = W,
    metric: str = "disk_usage_percent",
    analyzer: str = "threshold",
    state: AlertState = AlertState.FIRING,
    **labels: str,
) -> Alert:
    return Alert(
        timestamp=T0,
        hostname="h",
        severity=severity,
        metric=metric,
        value=85.0,
        threshold=80.0,
        message=f"{metric} {severity.label}",
        analyzer=analyzer,
        labels=make_labels(labels),
        state=state,
    )


# --------------------------------------------------------------------------- matchers

MATCHER_CASES: List[Tuple[str, Alert, bool]] = [
    ("metric=disk_usage_percent", alert(), True),
    ("metric=cpu_usage_percent", alert(), False),
    ("metric!=cpu_usage_percent", alert(), True),
    ('mountpoint=~"/srv.*"', alert(mountpoint="/srv/data"), True),
    ('mountpoint=~"/srv.*"', alert(mountpoint="/mnt/srv"), False),  # anchored
    ("mountpoint!~/srv.*", alert(mountpoint="/"), True),
    ('mountpoint=""', alert(), True),  # a missing label is empty
    ("mountpoint=", alert(mountpoint="/"), False),
    ("severity=warn", alert(W), True),
    ("severity!=emergency", alert(E), False),
    ("severity=~critical|emergency", alert(C), True),
    ("analyzer=trend", alert(), False),
    ('comment = "two words"', alert(comment="two words"), True),
]


@pytest.mark.parametrize(("text", "a", "expected"), MATCHER_CASES)
def test_matcher(text: str, a: Alert, expected: bool) -> None:
    assert parse_matcher(text).matches(a) is expected


@pytest.mark.parametrize("text", ["", "=x", "metric", "metric~x", 'mountpoint=~"("'])
def test_bad_matcher(text: str) -> None:
    with pytest.raises(ValueError):
        parse_matcher(text)


EMERGENCY_CASES = [
    (["metric=disk_usage_percent"], alert(E), False),
    (["metric=disk_usage_percent"], alert(C), True),
    (["metric=disk_usage_percent", "severity!=warn"], alert(E), False),  # not named
    (["metric=disk_usage_percent", "severity=emergency"], alert(E), True),
    (["severity=~critical|emergency"], alert(E), True),
    ([], alert(W), False),  # no matcher mutes nothing
]


@pytest.mark.parametrize(("texts", "a", "expected"), EMERGENCY_CASES)
def test_emergency_is_muted_only_when_named(texts: List[str], a: Alert, expected: bool) -> None:
    assert mutes(parse_matchers(texts), a) is expected


# ------------------------------------------------------------------------ mute decision


def test_mute_holds_then_releases_once() -> None:
    muted = {"on": True}
    fire = alert(mountpoint="/srv")
    out = mute_decision([fire], MuteState(), lambda a: muted["on"], "its silence ended")
    assert out.passed == [] and out.muted == 1 and len(out.state.held) == 1
    out = mute_decision([], out.state, lambda a: muted["on"], "its silence ended")
    assert out.passed == []
    muted["on"] = False
    out = mute_decision([], out.state, lambda a: muted["on"], "its silence ended")
    assert [a.id for a in out.passed] == [fire.id] and out.released == 1
    assert "its silence ended" in out.passed[0].message
    out = mute_decision([], out.state, lambda a: False, "x")
    assert out.passed == []  # never twice


def test_mute_drops_the_resolution_of_a_firing_nobody_heard_of() -> None:
    fire = alert()
    out = mute_decision([fire], MuteState(), lambda a: True, "x")
    resolved = fire.evolve(state=AlertState.RESOLVED)
    out = mute_decision([resolved], out.state, lambda a: True, "x")
    assert out.passed == [] and out.state.held == ()
    out = mute_decision([], out.state, lambda a: False, "x")
    assert out.passed == []  # resolved meanwhile: nothing is sent late


def test_mute_lets_the_resolution_of_a_sent_firing_through() -> None:
    fire = alert()
    out = mute_decision([fire], MuteState(), lambda a: False, "x")
    assert out.passed == [fire]
    resolved = fire.evolve(state=AlertState.RESOLVED)
    out = mute_decision([resolved], out.state, lambda a: True, "x")
    assert out.passed == [resolved]


# ---------------------------------------------------------------------------- silences


def test_silence_stage_and_book_survive_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "silences.json")
    book = SilenceBook(path)
    s = book.add(["metric=disk_usage_percent"], T0, T0 + 60, "disk swap", "ops")
    again = SilenceBook(path)  # a restart
    assert [x.id for x in again.silences] == [s.id]
    stage = SilenceStage(again)
    fire = alert(mountpoint="/srv")
    assert stage([fire], T0 + 1) == []
    assert stage.next_due() == T0 + 60
    assert stage([], T0 + 59) == []
    out = stage([], T0 + 60)
    assert [a.id for a in out] == [fire.id]
    assert stage.muted_total == 1 and stage.held == []


def test_silence_expire_by_prefix(tmp_path: Path) -> None:
    book = SilenceBook(str(tmp_path / "s.json"))
    s = book.add(["metric=x"], T0, T0 + 600, "", "")
    ended = book.expire(s.id[:6], T0 + 10)
    assert ended.ends_at == T0 + 10 and book.active(T0 + 11) == []
    with pytest.raises(KeyError):
        book.expire("zzz", T0)
    on_disk = json.loads((tmp_path / "s.json").read_text())
    assert on_disk["silences"][0]["ends_at"] == T0 + 10


def test_silence_book_skips_a_damaged_entry(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    good = {"id": "a", "matchers": ["metric=x"], "starts_at": 1, "ends_at": 2}
    path.write_text(json.dumps({"silences": [good, {"id": "b", "matchers": ["=("]}]}))
    assert [s.id for s in SilenceBook(str(path)).silences] == ["a"]


# ------------------------------------------------------------------------- maintenance


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


SUNDAY_BACKUP = MaintenanceWindow(
    name="backup", days=["sun"], start="02:00", duration_mins=120, timezone="UTC"
)
BERLIN = MaintenanceWindow(days=["mon"], start="02:00", duration_mins=60, timezone="Europe/Berlin")

WINDOW_CASES: List[Tuple[MaintenanceWindow, str, Optional[Tuple[str, str]]]] = [
    (SUNDAY_BACKUP, "2026-12-06T01:59:59", None),  # 2026-12-06 is a Sunday
    (SUNDAY_BACKUP, "2026-12-06T02:00:00", ("2026-12-06T02:00:00", "2026-12-06T04:00:00")),
    (SUNDAY_BACKUP, "2026-12-06T03:59:59", ("2026-12-06T02:00:00", "2026-12-06T04:00:00")),
    (SUNDAY_BACKUP, "2026-12-06T04:00:00", None),
    (SUNDAY_BACKUP, "2026-12-07T02:30:00", None),  # Monday
    (BERLIN, "2026-12-07T01:30:00", ("2026-12-07T01:00:00", "2026-12-07T02:00:00")),  # CET
    (BERLIN, "2026-07-06T00:30:00", ("2026-07-06T00:00:00", "2026-07-06T01:00:00")),  # CEST
]


@pytest.mark.parametrize(("window", "at", "expected"), WINDOW_CASES)
def test_occurrence(
    window: MaintenanceWindow, at: str, expected: Optional[Tuple[str, str]]
) -> None:
    want = None if expected is None else (utc(expected[0]), utc(expected[1]))
    assert occurrence(window, utc(at)) == want


def test_next_opening() -> None:
    assert next_opening(SUNDAY_BACKUP, utc("2026-12-01T06:00:00")) == (
        utc("2026-12-06T02:00:00"),
        utc("2026-12-06T04:00:00"),
    )
    assert next_opening(SUNDAY_BACKUP, utc("2026-12-06T02:00:00"))[0] == utc("2026-12-13T02:00:00")  # type: ignore[index]


def test_maintenance_stage_lets_emergency_through_and_sends_late() -> None:
    stage = MaintenanceStage([SUNDAY_BACKUP])  # no matchers: everything but emergencies
    inside = utc("2026-12-06T03:00:00")
    disk, emerg = alert(W, mountpoint="/srv"), alert(E, metric="memory_usage_percent")
    assert stage([disk, emerg], inside) == [emerg]
    assert stage.next_due() == utc("2026-12-06T04:00:00")
    out = stage([], utc("2026-12-06T04:00:00"))
    assert [a.id for a in out] == [disk.id]
    assert "maintenance window closed" in out[0].message


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"days": ["funday"]}, "unknown day"),
        ({"start": "25:00"}, "HH:MM"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"matchers": ["mountpoint=~("]}, "invalid regular expression"),
        ({"duration_mins": 0}, "below the minimum"),
    ],
)
def test_maintenance_config_is_validated(entry: dict, fragment: str) -> None:  # type: ignore[type-arg]
    b = Builder()
    b.build(PipelineConfig, {"maintenance": [entry]}, "alerting")
    assert any(fragment in str(p) for p in b.problems), b.problems


# -------------------------------------------------------------------------- inhibition

DEFAULT = compile_rules(default_inhibit_rules())


def firing_of(*alerts: Alert) -> dict:  # type: ignore[type-arg]
    return {identity(a): a for a in alerts}


INHIBIT_CASES = [
    # a trend critical on the same series inhibits the threshold warn
    (alert(W, mountpoint="/"), [alert(C, analyzer="trend", mountpoint="/")], True),
    (alert(W, mountpoint="/"), [alert(E, analyzer="trend", mountpoint="/")], True),
    # another series (mountpoint) does not
    (alert(W, mountpoint="/"), [alert(C, analyzer="trend", mountpoint="/srv")], False),
    # another metric does not
    (alert(W), [alert(C, metric="memory_usage_percent")], False),
    # a critical target is not a warn
    (alert(C, mountpoint="/"), [alert(E, analyzer="trend", mountpoint="/")], False),
    # an OOM kill of pid 42 inhibits pid 42's process alerts, not pid 43's
    (
        alert(W, metric="process_memory_bytes", pid="42", name="java"),
        [alert(C, metric="log_event", analyzer="log", pattern="oom_kill", pid="42")],
        True,
    ),
    (
        alert(W, metric="process_memory_bytes", pid="43", name="java"),
        [alert(C, metric="log_event", analyzer="log", pattern="oom_kill", pid="42")],
        False,
    ),
]


@pytest.mark.parametrize(("target", "firing", "expected"), INHIBIT_CASES)
def test_default_inhibition(target: Alert, firing: List[Alert], expected: bool) -> None:
    assert (inhibited(target, firing_of(*firing), DEFAULT) is not None) is expected


def test_an_alert_does_not_inhibit_itself() -> None:
    rules = compile_rules([InhibitRule(["metric=x"], ["metric=x"], [])])
    a = alert(metric="x")
    assert inhibited(a, firing_of(a), rules) is None
    assert inhibited(a, firing_of(alert(metric="x", analyzer="trend")), rules) is not None


def test_inhibit_stage_sends_the_target_when_the_source_resolves() -> None:
    stage = InhibitStage(default_inhibit_rules())
    crit = alert(C, analyzer="trend", mountpoint="/")
    warn = alert(W, mountpoint="/")
    assert stage([crit], T0) == [crit]
    assert stage([warn], T0 + 1) == []
    out = stage([crit.evolve(state=AlertState.RESOLVED)], T0 + 2)
    assert [a.state for a in out] == [AlertState.RESOLVED, AlertState.FIRING]
    assert out[1].id == warn.id


def test_inhibit_stage_state_survives_a_restart() -> None:
    """Saved and restored (what ``alerts.state`` does): the target stays held while its
    source fires and is sent once when the source resolves; ``keep`` filters identities."""
    stage = InhibitStage(default_inhibit_rules())
    crit = alert(C, analyzer="trend", mountpoint="/")
    warn = alert(W, mountpoint="/")
    stage([crit], T0)
    stage([warn], T0 + 1)
    saved = json.loads(json.dumps(stage.snapshot()))
    after = InhibitStage(default_inhibit_rules())
    assert after.restore(saved, T0 + 100, lambda ident: True) == 1
    assert after([], T0 + 101) == []  # the source still fires: held
    out = after([crit.evolve(state=AlertState.RESOLVED)], T0 + 102)
    assert [(a.state, a.id) for a in out] == [
        (AlertState.RESOLVED, crit.id),
        (AlertState.FIRING, warn.id),
    ]
    skipped = InhibitStage(default_inhibit_rules())
    assert skipped.restore(saved, T0 + 100, lambda ident: ident != identity(warn)) == 0


# -------------------------------------------------------------------------- firing table


def test_firing_table_keeps_since_across_escalation() -> None:
    w = alert(W)
    table = firing_update({}, w)
    table = firing_update(table, alert(C).evolve(timestamp=T0 + 60))
    since, latest = table[identity(w)]
    assert since == T0 and latest.severity is C
    assert firing_update(table, w.evolve(state=AlertState.RESOLVED)) == {}


def log_event(pid: int) -> Alert:
    """One burst of a log storm: its own labels every time, and never a resolution."""
    return alert(C, metric="log_segfault", analyzer="log", pattern="segfault", line=f"app[{pid}]")


def test_log_events_never_enter_the_firing_table() -> None:
    """The soak's storms filled it (and alerts.state) with one entry per burst, 4,096 at most."""
    table = firing_update({}, alert(W))
    for pid in range(100):
        table = firing_update(table, log_event(pid))
    assert list(table) == [identity(alert(W))]


def test_sent_log_events_are_not_remembered_as_waiting_for_a_resolution() -> None:
    out = mute_decision([log_event(pid) for pid in range(100)], MuteState(), lambda a: False, "x")
    assert len(out.passed) == 100 and out.state.notified == frozenset()
    held = mute_decision([log_event(1)], MuteState(), lambda a: True, "x")
    released = mute_decision([], held.state, lambda a: False, "its silence ended")
    assert released.released == 1 and released.state == MuteState()


def test_the_rate_limiters_summaries_are_events() -> None:
    assert SUMMARY_ANALYZER in EVENT_ANALYZERS


def test_default_pipeline_order() -> None:
    names = [type(s).__name__ for s in build_stages(PipelineConfig())]
    assert names == [
        "FiringStage",
        "DedupStage",
        "FlapStage",
        "InhibitStage",
        "SilenceStage",
        "RepeatStage",
    ]


def test_carry_over_keeps_held_alerts_across_a_rebuild() -> None:
    from sysops_agent.alerting.carryover import carry_over

    book = SilenceBook()
    book.silences.append(SilenceBook().add(["metric=disk_usage_percent"], T0, T0 + 60, "", ""))
    old = build_stages(PipelineConfig())
    for s in old:
        if isinstance(s, SilenceStage):
            s.book = book
    fire = alert()
    out = [fire]
    for s in old:
        out = s(out, T0 + 1)
    assert out == []  # held
    new = build_stages(PipelineConfig(repeat_interval_secs=60))
    assert carry_over(old, new) == 5  # firing, flap, inhibit, silence, repeat
    [silence] = [s for s in new if isinstance(s, SilenceStage)]
    silence.book = book
    assert [a.id for a in silence([], T0 + 60)] == [fire.id]
