"""Tables for the pure parse helpers that the fixture cases only touch in passing."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysops_agent.collectors.common import GlobFilter, ParseError
from sysops_agent.collectors.cpu import parse_stat
from sysops_agent.collectors.disk_io import DiskIOCollector, looks_like_partition
from sysops_agent.collectors.disk_usage import parse_mounts, unescape_mount_field
from sysops_agent.collectors.network import parse_net_dev
from sysops_agent.collectors.process import parse_pid_stat
from sysops_agent.procfs import ProcFS


@pytest.mark.parametrize(
    ("name", "partition"),
    [
        ("sda", False),
        ("sda1", True),
        ("sdaa12", True),
        ("vdb2", True),
        ("xvda1", True),
        ("hdc3", True),
        ("nvme0n1", False),
        ("nvme0n1p1", True),
        ("mmcblk0", False),
        ("mmcblk0p2", True),
        ("dm-0", False),
        ("md127", False),
        ("loop0", False),
    ],
)
def test_partition_name_rule(name: str, partition: bool) -> None:
    assert looks_like_partition(name) is partition


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("/mnt/plain", "/mnt/plain"),
        ("/mnt/My\\040Disk", "/mnt/My Disk"),
        ("/mnt/a\\011b\\012c", "/mnt/a\tb\nc"),
        ("/mnt/back\\134slash", "/mnt/back\\slash"),
        ("/mnt/not\\08", "/mnt/not\\08"),  # not three octal digits: kept as is
        ("/mnt/end\\", "/mnt/end\\"),
    ],
)
def test_mount_escapes(raw: str, decoded: str) -> None:
    assert unescape_mount_field(raw) == decoded


def test_mounts_short_line_is_an_error() -> None:
    with pytest.raises(ParseError, match="/proc/mounts"):
        parse_mounts("/dev/sda1 /boot\n")


def test_pid_stat_kernel_thread_and_odd_comm() -> None:
    kthread = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 7 0 0 20 0 1 0 24 0 0 0"
    st = parse_pid_stat(kthread)
    assert (st.pid, st.comm, st.is_kernel_thread, st.rss_pages) == (2, "kthreadd", True, 0)
    odd = "7 ((x) y) R 1 7 7 0 -1 4194304 0 0 0 0 3 4 0 0 20 0 2 0 99 1000 25 0"
    st = parse_pid_stat(odd)
    assert (st.comm, st.state, st.cpu_ticks, st.threads, st.starttime, st.rss_pages) == (
        "(x) y",
        "R",
        7,
        2,
        99,
        25,
    )
    assert not st.is_kernel_thread


@pytest.mark.parametrize("text", ["", "12 no parens S 1", "12 (short) S 1 2 3"])
def test_pid_stat_errors(text: str) -> None:
    with pytest.raises(ParseError, match=r"/proc/\[pid\]/stat"):
        parse_pid_stat(text)


def test_stat_pads_old_kernels_without_steal() -> None:
    cpus = parse_stat("cpu  1 2 3 4 5 6 7\ncpu0 1 2 3 4\nintr 0\n")
    assert cpus["cpu"] == (1, 2, 3, 4, 5, 6, 7, 0)
    assert cpus["cpu0"] == (1, 2, 3, 4, 0, 0, 0, 0)


def test_stat_without_aggregate_line_is_an_error() -> None:
    with pytest.raises(ParseError, match="no aggregate 'cpu' line"):
        parse_stat("intr 0\nctxt 1\n")


def test_net_dev_old_format_without_space_after_colon() -> None:
    text = (
        "Inter-|   Receive |  Transmit\n"
        " face |bytes packets|bytes\n"
        "eth0:4294967000 10 1 2 0 0 0 0 500 20 3 4 0 0 0 0\n"
    )
    (dev,) = parse_net_dev(text)
    assert dev == ("eth0", 4294967000, 10, 1, 2, 500, 20, 3, 4)


def test_glob_filter() -> None:
    f = GlobFilter(["loop*", "sr?", "veth*"])
    assert [f(n) for n in ("loop0", "sr0", "sr10", "vethab12", "sda", "eth0")] == [
        True,
        True,
        False,
        True,
        False,
        False,
    ]
    assert GlobFilter([])("anything") is False


def test_io_util_clamps_small_overshoot_and_drops_impossible(tmp_path: Path) -> None:
    """io_ticks may run a little ahead of our clock (clamped to 100 %), not 2x (dropped)."""
    c = DiskIOCollector(ProcFS(tmp_path, tmp_path / "no-sys"))
    util = []
    for now, ticks in ((0.0, 0), (10.0, 10_200), (20.0, 30_200)):
        (tmp_path / "diskstats").write_text(f"8 0 sda 1 0 8 0 1 0 8 0 0 {ticks} 0\n")
        util.append([s.value for s in c.collect(now) if s.metric == "disk_io_util_percent"])
    assert util == [[], [100.0], []]
