"""Hits -> alerts: bursts become one counted alert, duplicates across sources are dropped."""

from __future__ import annotations

from typing import Dict, List, Optional

import pytest

from sysops_agent.clock import VirtualClock
from sysops_agent.logwatch import bursts
from sysops_agent.logwatch.events import EventPipeline, unit_of_cgroup
from sysops_agent.logwatch.patterns import Matcher
from sysops_agent.model import Alert, AlertState, Sample, Severity

MATCHER = Matcher()


class Sink:
    def __init__(self) -> None:
        self.alerts: List[Alert] = []
        self.samples: List[Sample] = []

    def counters(self) -> Dict[str, float]:
        return {s.metric: s.value for s in self.samples}


def pipeline(clock: VirtualClock, sink: Sink, *, max_line: int = 512) -> EventPipeline:
    return EventPipeline(
        hostname="web01",
        clock=clock,
        emit_alert=sink.alerts.append,
        emit_sample=sink.samples.append,
        burst_window=30.0,
        dedup_window=10.0,
        max_line=max_line,
        own_pid=999,
    )


def feed(
    p: EventPipeline, text: str, source: str = "kmsg", meta: Optional[Dict[str, str]] = None
) -> None:
    for hit in MATCHER.scan_text(text):
        p.deliver(source, hit, meta or {})


IO = "blk_update_request: I/O error, dev {dev}, sector {n} op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0"


def test_a_burst_is_one_prompt_alert_and_one_count() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink)
    for i in range(500):
        feed(p, IO.format(dev="sdb", n=i))
        clock.set(clock.time() + 0.002)
    assert len(sink.alerts) == 1
    first = sink.alerts[0]
    assert first.metric == "log_io_error" and first.severity is Severity.CRITICAL
    assert first.analyzer == "log" and first.state is AlertState.FIRING
    assert first.value == 1
    labels = dict(first.labels)
    assert labels["device"] == "sdb" and labels["sector"] == "0" and labels["source"] == "kmsg"
    assert labels["line"] == IO.format(dev="sdb", n=0)
    assert first.message.startswith("I/O error on sdb [kmsg]: blk_update_request")
    feed(p, IO.format(dev="sdc", n=1))  # another device is another event
    assert [dict(a.labels)["device"] for a in sink.alerts] == ["sdb", "sdc"]

    clock.set(clock.time() + 28)
    p.tick()
    assert len(sink.alerts) == 2  # the window (30 s from the first error) is still open
    clock.set(clock.time() + 1)
    p.tick()
    assert len(sink.alerts) == 3
    summary = sink.alerts[2]
    assert summary.message == "500 I/O errors on sdb in 1s"
    assert summary.value == 500
    assert dict(summary.labels)["count"] == "500"
    assert dict(summary.labels)["line"] == IO.format(dev="sdb", n=499)
    assert summary.duration == pytest.approx(0.998, abs=1e-3)
    # sdc had no repeat: no follow-up; counters count every occurrence
    p.tick()
    assert len(sink.alerts) == 3
    assert sink.counters()["kernel_io_errors_total"] == 501


def test_a_long_flood_reports_once_per_window_and_a_quiet_window_ends_it() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink)
    for _ in range(90):  # one error per second for 90 s
        feed(p, IO.format(dev="sda", n=1))
        clock.set(clock.time() + 1)
        p.tick()
    messages = [a.message for a in sink.alerts]
    assert messages[0].startswith("I/O error on sda")
    assert messages[1] == "30 I/O errors on sda in 29s"
    assert messages[2] == "30 I/O errors on sda in 29s (ongoing, 60 in total)"
    assert messages[3] == "30 I/O errors on sda in 29s (ongoing, 90 in total)"
    assert len(messages) == 4
    clock.set(clock.time() + 60)
    p.tick()  # a window without repeats: the burst is over, nothing to say
    n = len(sink.alerts)
    assert n == 4
    feed(p, IO.format(dev="sda", n=2))  # the burst is over: alert at once again
    assert len(sink.alerts) == n + 1 and sink.alerts[-1].value == 1


def test_same_line_from_three_sources_is_one_event() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink)
    line = "EXT4-fs error (device sda1): ext4_lookup:1855: inode #2: comm ls: bad"
    feed(p, line, "kmsg")
    feed(p, line, "journal", {"ident": "kernel"})
    feed(
        p,
        f"Nov 27 02:21:40 web01 kernel: [1235100.543210] {line}",
        "/var/log/syslog",
        {"ident": "kernel"},
    )
    assert len(sink.alerts) == 1 and p.duplicates == 2
    p.tick()
    assert sink.counters()["kernel_fs_errors_total"] == 1
    # two real occurrences seen by two sources are two events, not four
    feed(p, line, "kmsg")
    feed(p, line, "/var/log/syslog")
    assert p.counters.values["kernel_fs_errors_total"] == 2
    # after the dedup window the same text is a new occurrence
    clock.set(clock.time() + 11)
    feed(p, line, "/var/log/syslog")
    assert p.counters.values["kernel_fs_errors_total"] == 3


def test_oom_kill_names_process_pid_cgroup_and_unit() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink)
    feed(
        p,
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
        "task_memcg=/system.slice/tomcat9.service,task=java,pid=4242,uid=997",
    )
    assert sink.alerts == []
    feed(
        p,
        "Out of memory: Killed process 4242 (java) total-vm:8123456kB, anon-rss:4012345kB, UID:997",
    )
    (alert,) = sink.alerts
    labels = dict(alert.labels)
    assert labels["pid"] == "4242" and labels["process"] == "java"
    assert labels["cgroup"] == "/system.slice/tomcat9.service"
    assert labels["unit"] == "tomcat9.service"
    assert alert.message.startswith(
        "OOM kill: killed process java (pid 4242, unit tomcat9.service)"
    )
    assert alert.severity is Severity.CRITICAL
    # an old kernel without the oom-kill: line
    feed(p, "Out of memory: Kill process 2345 (mysqld) score 912 or sacrifice child")
    assert sink.alerts[-1].message.startswith("OOM kill: killed process mysqld (pid 2345) [kmsg]")
    p.tick()
    assert sink.counters()["kernel_oom_kills_total"] == 2


def test_our_own_output_is_never_fed_back() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink)
    feed(
        p, "[critical] OOM kill: Out of memory: Killed process 1 (x)", "journal", {"log_pid": "999"}
    )
    assert sink.alerts == []
    feed(p, "Out of memory: Killed process 1 (x)", "journal", {"log_pid": "1000"})
    assert len(sink.alerts) == 1


def test_raw_line_is_truncated() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink, max_line=100)
    feed(p, "segfault at 0 " + "x" * 5000)
    labels = dict(sink.alerts[0].labels)
    assert len(labels["line"]) == 100
    assert len(sink.alerts[0].message) < 300


def test_counters_are_emitted_when_changed_and_all_on_request() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink)
    p.tick(all_counters=True)
    assert sink.counters() == {
        "kernel_oom_kills_total": 0,
        "kernel_hung_tasks_total": 0,
        "kernel_hardware_errors_total": 0,
        "kernel_fs_errors_total": 0,
        "kernel_io_errors_total": 0,
        "kernel_segfaults_total": 0,
    }
    sink.samples.clear()
    p.tick()
    assert sink.samples == []
    feed(p, "INFO: task kworker/0:1:55 blocked for more than 120 seconds.")
    feed(p, "app[3]: segfault at 0 ip 0 sp 0 error 4 in app[400000+1000]")
    feed(p, "Kernel panic - not syncing: Fatal exception")  # alerts, no counter
    p.tick()
    assert {s.metric: s.value for s in sink.samples} == {
        "kernel_hung_tasks_total": 1,
        "kernel_segfaults_total": 1,
    }
    assert sink.alerts[-1].severity is Severity.EMERGENCY


def test_shutdown_flushes_pending_follow_ups() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink)
    for _ in range(3):
        feed(p, "INFO: task nfsd:77 blocked for more than 120 seconds.")
    clock.set(clock.time() + 2)
    p.tick(force_flush=True)
    assert [a.message for a in sink.alerts][1] == "3 hung tasks of nfsd in 0s"


@pytest.mark.parametrize(
    ("cgroup", "unit"),
    [
        ("/system.slice/nginx.service", "nginx.service"),
        ("/user.slice/user-1000.slice/session-3.scope", "session-3.scope"),
        ("/docker/0123abcd", None),
        ("/", None),
    ],
)
def test_unit_of_cgroup(cgroup: str, unit: Optional[str]) -> None:
    assert unit_of_cgroup(cgroup) == unit


def test_burst_state_is_capped_and_an_evicted_burst_keeps_its_count() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink)
    p.bursts.max_keys = 100
    p.bursts.storm_keys = 0  # storms off: 100 new devices a second would be one
    occurrences = 0
    for i in range(1000):  # 1,000 distinct devices, each seen twice: 10x the cap
        for n in range(2):
            feed(p, IO.format(dev=f"sd{i}", n=n))
            occurrences += 1
        clock.set(clock.time() + 0.01)
        assert len(p.bursts) <= 100
    p.tick(force_flush=True)
    assert p.bursts.evicted == 900
    # per device a prompt alert and a follow-up counting both occurrences: none lost
    follow_ups = [a for a in sink.alerts if a.duration is not None]
    assert len(sink.alerts) - len(follow_ups) == 1000
    assert sum(a.value for a in follow_ups) == occurrences
    assert len(p.bursts) == 0


def test_dedup_state_is_capped() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink)
    p.dedup.max_entries = 50
    for i in range(500):
        feed(p, IO.format(dev="sda", n=i))
        assert len(p.dedup) <= 50
    # the newest fingerprints are still there: the same line from another source is a duplicate
    feed(p, IO.format(dev="sda", n=499), "journal")
    assert p.duplicates == 1


SEGV = "{name}[{pid}]: segfault at 0 ip 0 sp 0 error 4 in libc.so.6[7f0000+1000]"


def test_new_keys_faster_than_the_storm_threshold_are_folded_into_one_count() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink)
    feed(p, SEGV.format(name="app0", pid=1))
    feed(p, SEGV.format(name="app0", pid=2))  # a repeat of a key that alerted at once
    for i in range(1, 10):
        feed(p, SEGV.format(name=f"app{i}", pid=10 + i))
        clock.set(clock.time() + 1)
    # the first three keys alerted at once; the fourth within 10 s started the storm
    assert [dict(a.labels)["process"] for a in sink.alerts] == ["app0", "app1", "app2"]
    assert p.bursts.storms == 1 and len(p.bursts) == 0  # their bursts were folded into it
    feed(p, SEGV.format(name="app0", pid=3))  # an old key during the storm: counted there
    clock.set(clock.time() + 22)
    p.tick()
    assert len(sink.alerts) == 3  # 29 s after the storm started (at the fourth key)
    clock.set(clock.time() + 1)
    p.tick()
    summary = sink.alerts[-1]
    assert len(sink.alerts) == 4, "no separate follow-ups for the keys folded into the storm"
    assert summary.value == 12  # 2 + 9 + 1: every occurrence, in exactly one summary
    assert summary.message.startswith("12 segfaults from 10 processes in 9s (storm), first in ")
    assert dict(summary.labels)["first_line"] == SEGV.format(name="app0", pid=1)
    # one more summary per window while it lasts, then a quiet window ends it
    for i in range(30):
        feed(p, SEGV.format(name=f"more{i}", pid=100 + i))
        clock.set(clock.time() + 1)
        p.tick()
    ongoing = sink.alerts[-1]
    assert len(sink.alerts) == 5 and ongoing.value == 30
    assert ongoing.message.startswith("30 more segfaults from 30 processes in 29s (storm since ")
    assert ", 42 in total), first in more0 (pid 100) at " in ongoing.message
    clock.set(clock.time() + 31)
    p.tick()
    assert len(sink.alerts) == 5 and p.bursts.storms == 0
    feed(p, SEGV.format(name="later", pid=1000))
    assert sink.alerts[-1].message.startswith("Segfault in later (pid 1000) [kmsg]")


def test_new_keys_slower_than_the_storm_threshold_each_alert_at_once() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink)
    for i in range(20):  # a new process every 4 s: four in 12 s, never four in 10 s
        feed(p, SEGV.format(name=f"app{i}", pid=i))
        clock.set(clock.time() + 4)
        p.tick()
    assert len(sink.alerts) == 20 and p.bursts.storms == 0
    assert all(a.value == 1 for a in sink.alerts)


def test_storms_are_per_pattern() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink)
    for i in range(100):
        feed(p, SEGV.format(name=f"app{i}", pid=i))
    feed(p, IO.format(dev="sdb", n=1))  # another pattern is not part of the segfault storm
    assert [a.metric for a in sink.alerts] == ["log_segfault"] * 3 + ["log_io_error"]


def test_storm_state_is_bounded() -> None:
    clock, sink = VirtualClock(), Sink()
    p = pipeline(clock, sink)
    for i in range(20_000):
        feed(p, SEGV.format(name=f"app{i}", pid=i))
    (storm,) = p.bursts._storms.values()
    assert len(storm.keys) == bursts.STORM_MAX_KEYS and storm.keys_over
    assert len(p.bursts) == 0
    p.tick(force_flush=True)
    assert sink.alerts[-1].message.startswith("20,000 segfaults from over 1,024 processes")
    assert p.bursts.storms == 0
