"""Bounded cardinality (issue 17, item 5): a series cap per collector, virtual NICs excluded."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List

import pytest

from sysops_agent.cardinality import SeriesCap
from sysops_agent.clock import VirtualClock
from sysops_agent.collectors.base import CollectorStats
from sysops_agent.collectors.network import NetworkConfig, create
from sysops_agent.config import Config
from sysops_agent.model import Sample, make_labels
from sysops_agent.procfs import ProcFS
from sysops_agent.scheduler import CollectorScheduler


def cycle(names: List[str], now: float = 0.0) -> List[Sample]:
    return [Sample(now, "net_rx_bytes_per_second", 1.0, make_labels(interface=n)) for n in names]


def names_of(samples: List[Sample]) -> List[str]:
    return [dict(s.labels)["interface"] for s in samples]


def test_under_the_cap_samples_pass_untouched() -> None:
    cap = SeriesCap("network", 3)
    samples = cycle(["a", "b", "c"])
    assert cap(samples) is samples
    assert cap.dropped == 0 and not cap.warned
    unlimited = SeriesCap("network", 0)
    many = cycle([str(i) for i in range(5000)])
    assert unlimited(many) is many


def test_above_the_cap_the_admitted_series_keep_their_place(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cap = SeriesCap("network", 3)
    with caplog.at_level(logging.WARNING, logger="sysops_agent.cardinality"):
        assert names_of(cap(cycle(["a", "b", "c", "d", "e"]))) == ["a", "b", "c"]
        # a new series listed first does not push out the admitted ones
        assert names_of(cap(cycle(["z", "a", "b", "c", "d"]))) == ["a", "b", "c"]
        # one admitted series vanishes: the first newcomer gets its room
        assert names_of(cap(cycle(["z", "a", "c", "d"]))) == ["z", "a", "c"]
    assert cap.dropped == 2 + 2 + 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # said once
    assert "network reports 5 series, above its cap of 3" in warnings[0].getMessage()


async def test_the_scheduler_caps_each_collector_and_counts_the_overflow() -> None:
    class Many:
        name = "network"
        interval = 10.0
        stats = CollectorStats()

        def collect(self, now: float) -> List[Sample]:
            return cycle([f"eth{i}" for i in range(12)], now)

    clock = VirtualClock(start=1000.0)
    got: List[Sample] = []
    many = Many()
    sched = CollectorScheduler([many], got.extend, clock, max_series=10)
    await sched.run_once(many)
    await sched.run_once(many)
    await sched.stop()
    stored = [s for s in got if s.metric == "net_rx_bytes_per_second"]
    assert len(stored) == 2 * 10
    dropped = [s.value for s in got if s.metric == "agent_series_dropped_total"]
    assert dropped == [2.0, 4.0]
    assert {dict(s.labels)["collector"] for s in got if s.metric.startswith("agent_")} == {
        "network"
    }


def test_the_default_cap_is_in_the_config() -> None:
    assert Config().storage.max_series_per_collector == 1000


NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
{lines}
"""


def net_dev(names: List[str], scale: int) -> str:
    lines = [
        f"{n:>6}: {scale * 1000} {scale} 0 0 0 0 0 0 {scale * 500} {scale} 0 0 0 0 0 0"
        for n in names
    ]
    return NET_DEV.format(lines="\n".join(lines))


VIRTUAL = ["veth1a2b3c", "docker0", "br-5f2e", "cni0", "flannel.1", "virbr0", "tap0", "lo"]
REAL = ["eth0", "ens3", "bond0", "wlp2s0", "enp0s31f6"]


def test_virtual_interfaces_are_excluded_by_default(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    procfs = ProcFS(str(tmp_path), str(tmp_path))
    collector = create(procfs, NetworkConfig())
    (tmp_path / "net" / "dev").write_text(net_dev(REAL + VIRTUAL, 1))
    collector.collect(0.0)
    (tmp_path / "net" / "dev").write_text(net_dev(REAL + VIRTUAL, 2))
    got = collector.collect(10.0)
    assert sorted({dict(s.labels)["interface"] for s in got}) == sorted(REAL)
    # configurable: [] keeps every interface
    keep_all = create(procfs, NetworkConfig(exclude_interfaces=[]))
    keep_all.collect(0.0)
    (tmp_path / "net" / "dev").write_text(net_dev(REAL + VIRTUAL, 3))
    assert len({dict(s.labels)["interface"] for s in keep_all.collect(10.0)}) == len(REAL + VIRTUAL)
