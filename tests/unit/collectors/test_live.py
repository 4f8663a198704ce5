"""Every collector against this machine's real /proc: two calls, required metrics, sane values."""

from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

import pytest

from sysops_agent.collectors.process import ProcessCollector
from sysops_agent.collectors.registry import COLLECTORS, build_collectors, collect_once
from sysops_agent.config import Config, load_config
from sysops_agent.model import Sample
from sysops_agent.procfs import ProcFS
from tests.support.procfixture import FIXTURES, Replay, load_spec

#: SPEC §3 metrics that every Linux host has
ALWAYS = {
    "cpu_usage_percent",
    "cpu_user_percent",
    "cpu_system_percent",
    "cpu_iowait_percent",
    "cpu_steal_percent",
    "cpu_core_usage_percent",
    "load_avg_1m",
    "load_avg_5m",
    "load_avg_15m",
    "memory_usage_percent",
    "memory_used_bytes",
    "memory_available_bytes",
    "memory_total_bytes",
    "swap_usage_percent",
    "process_count",
    "process_rss_bytes",
    "process_cpu_percent",
    "process_fd_count",
    "process_threads",
    "fd_allocated",
    "fd_max",
    "fd_usage_percent",
    "uptime_seconds",
}
DISK_IO = {
    "disk_read_bytes_per_second",
    "disk_write_bytes_per_second",
    "disk_read_ops_per_second",
    "disk_write_ops_per_second",
    "disk_io_util_percent",
}
DISK_USAGE = {"disk_usage_percent", "disk_free_bytes"}
NETWORK = {
    f"net_{d}_{what}_per_second"
    for d in ("rx", "tx")
    for what in ("bytes", "packets", "errors", "drops")
}


def _own_comm() -> str:
    text = Path("/proc/self/stat").read_text()
    return text[text.find("(") + 1 : text.rfind(")")]


def _config() -> Config:
    # track ourselves by name, so that our own process is certainly among the tracked ones
    pattern = _own_comm().replace("[", "[[]")
    result = load_config(text=f'[collector.process]\ntrack_patterns = ["{pattern}"]\n', env={})
    assert not result.problems
    return result.config


def _two_rounds() -> Dict[str, List[Sample]]:
    collectors = build_collectors(ProcFS(), _config().collector)
    assert sorted(c.name for c in collectors) == sorted(p.name for p in COLLECTORS)
    for c in collectors:
        assert c.collect(1000.0) is not None
    # the kernel's CPU counters advance every 1/USER_HZ s: let a few ticks pass for real
    time.sleep(0.05)
    by_metric: Dict[str, List[Sample]] = defaultdict(list)
    for c in collectors:
        for s in c.collect(1001.0):
            assert s.ts == 1001.0
            assert math.isfinite(s.value), s
            by_metric[s.metric].append(s)
    return by_metric


def test_every_required_metric_with_sane_values() -> None:
    m = _two_rounds()
    missing = ALWAYS - set(m)
    assert not missing, f"missing metrics: {sorted(missing)}"

    for name, samples in m.items():
        for s in samples:
            assert s.value >= 0, s
            if name.endswith("_percent") and name != "process_cpu_percent":
                assert s.value <= 100.0 + 1e-9, s
    ncpu = os.cpu_count() or 1
    assert len(m["cpu_core_usage_percent"]) <= ncpu
    for s in m["process_cpu_percent"]:
        assert s.value <= 100.0 * ncpu * 1.5, s

    total = m["memory_total_bytes"][0].value
    assert total == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    used, avail = m["memory_used_bytes"][0].value, m["memory_available_bytes"][0].value
    assert used + avail == total
    assert m["fd_allocated"][0].value <= m["fd_max"][0].value
    assert m["uptime_seconds"][0].value > 0
    load = os.getloadavg()
    assert m["load_avg_15m"][0].value == pytest.approx(load[2], abs=0.5)

    me = [s for s in m["process_rss_bytes"] if dict(s.labels)["pid"] == str(os.getpid())]
    assert me, "our own process is not tracked"
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    assert me[0].value == pytest.approx(pages * os.sysconf("SC_PAGE_SIZE"), rel=0.2)
    if Path("/proc/self/io").exists():  # a kernel with task I/O accounting: our own is readable
        for name in ("process_io_read_bytes_per_second", "process_io_write_bytes_per_second"):
            assert [s for s in m[name] if dict(s.labels)["pid"] == str(os.getpid())], name
    assert m["process_count"][0].value >= len(m["process_rss_bytes"])

    diskstats = Path("/proc/diskstats").read_text()
    if any(dev in diskstats.split() for dev in os.listdir("/sys/block") if dev[:4] != "loop"):
        assert not DISK_IO - set(m), "a disk exists but disk I/O metrics are missing"
    if Path("/proc/mounts").read_text().split()[2:3] and os.statvfs("/").f_blocks > 0:
        assert not DISK_USAGE - set(m)
    if any(name.strip() != "lo" for name in os.listdir("/sys/class/net")):
        assert not NETWORK - set(m), "an interface exists but network metrics are missing"


def test_collect_once_live_includes_rates() -> None:
    samples = collect_once(ProcFS(), Config().collector, clock_sleep=0.05)
    metrics = {s.metric for s in samples}
    assert "cpu_usage_percent" in metrics
    assert "uptime_seconds" in metrics
    assert len({s.ts for s in samples}) == 1, "one timestamp for the whole second reading"


def test_collect_once_replays_a_captured_step() -> None:
    """collect_once over live_host step0 -> step1 returns exactly that case's step-1 samples."""
    case = FIXTURES / "live_host"
    spec = load_spec(case)
    replay = Replay(case, spec)
    step0, step1 = spec["steps"]
    replay.enter(step0)
    times = iter([step0["now"], step1["now"]])
    samples = collect_once(
        replay.procfs,
        replay.config.collector,
        clock_sleep=0,
        time_fn=lambda: next(times),
        between=lambda: replay.enter(step1),
        factories=replay.factories,
    )
    got = sorted((s.metric, s.labels, s.value) for s in samples)
    want = sorted((m, tuple(sorted(lab.items())), v) for m, lab, v in step1["samples"])
    assert [g[:2] for g in got] == [w[:2] for w in want]
    assert [g[2] for g in got] == pytest.approx([w[2] for w in want])


def test_collect_once_leaves_out_a_broken_collector(tmp_path: Path) -> None:
    (tmp_path / "uptime").write_text("4242.5 100.0\n")
    samples = collect_once(ProcFS(tmp_path, tmp_path), Config().collector, clock_sleep=0)
    # every other collector fails on the nearly empty tree; uptime and process (no pids) work
    assert {s.metric for s in samples} == {"uptime_seconds", "process_count"}


@pytest.mark.slow  # forks a child that drops to nobody
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_unprivileged_run_counts_permission_denied() -> None:
    """As nobody, other users' /proc/[pid]/fd cannot be listed: counted, not fatal, RSS still
    reported (and on Linux 6.2+ their descriptors counted all the same, from the size)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to nobody, collect, report, exit without pytest's teardown
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            c = ProcessCollector(ProcFS(), top_n=1000)
            out = c.collect(1.0)
            result = {
                "denied": c.stats.permission_denied,
                "rss": sum(s.metric == "process_rss_bytes" for s in out),
                "fd": sum(s.metric == "process_fd_count" for s in out),
                "count": next(s.value for s in out if s.metric == "process_count"),
            }
            os.write(write_end, json.dumps(result).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, data
    result = json.loads(data)
    assert result["rss"] == result["fd"] + result["denied"]
    assert result["count"] >= result["rss"]
    if os.stat(f"/proc/{os.getpid()}/fd").st_size > 0:
        # Linux 6.2+: the count is the size of /proc/<pid>/fd, readable without
        # privilege; only a process with no descriptor at all is listed (and refused)
        assert result["fd"] > result["denied"]
    else:
        assert result["denied"] > 0
