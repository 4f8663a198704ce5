"""Kernel pseudo-files kept open between cycles (collectors/keptfiles.py), and the cgroup
walk kept between cycles (collectors/cgroup.py): what is cached must still follow changes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Set, Tuple

import pytest

from sysops_agent.collectors.cgroup import RESCAN_CYCLES, CgroupCollector
from sysops_agent.collectors.keptfiles import CHUNK, KeptFiles
from sysops_agent.procfs import ProcFS
from tests.support.paths import FIXTURES


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _state(stat: bytes) -> str:
    return stat.rsplit(b")", 1)[1].split()[0].decode()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs procfs")
def test_a_kept_proc_file_is_read_afresh_and_let_go_when_its_process_is_gone(
    child: subprocess.Popen[bytes],
) -> None:
    files = KeptFiles()
    path = f"/proc/{child.pid}/stat"
    first = files.read(path)
    assert first is not None
    assert files.paths() == [path]  # under /proc: kept open
    os.kill(child.pid, signal.SIGSTOP)
    os.waitpid(child.pid, os.WUNTRACED)  # returns once the child is stopped
    stopped = files.read(path)
    assert stopped is not None and _state(stopped) == "T"  # the same descriptor, a new snapshot
    assert files.paths() == [path]
    child.kill()
    child.wait()
    assert files.read(path) is None  # ESRCH on the kept descriptor, ENOENT on reopening
    assert files.paths() == []


def test_files_outside_proc_and_sys_are_opened_on_every_read(tmp_path: Path) -> None:
    files = KeptFiles()
    path = tmp_path / "snmp"
    path.write_text("one\n")
    assert files.read(str(path)) == b"one\n"
    assert files.paths() == []
    replacement = tmp_path / "snmp.new"
    replacement.write_text("two\n")
    replacement.replace(path)  # a test replacing a fixture file: a new inode
    assert files.read(str(path)) == b"two\n"
    path.unlink()
    assert files.read(str(path)) is None
    assert files.read(str(tmp_path / "missing" / "x")) is None


def test_a_file_longer_than_one_chunk_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "io.stat"
    data = b"".join(b"8:%d rbytes=1 wbytes=2\n" % i for i in range(3 * CHUNK // 20))
    assert len(data) > 2 * CHUNK
    path.write_bytes(data)
    assert KeptFiles().read(str(path)) == data


@pytest.mark.skipif(not os.path.isfile("/proc/self/stat"), reason="needs procfs")
def test_at_most_limit_files_are_kept() -> None:
    files = KeptFiles(limit=1)
    assert files.read("/proc/self/stat") is not None
    assert files.read("/proc/self/statm") is not None
    assert files.paths() == ["/proc/self/stat"]  # the second one was opened and closed
    files.close()
    assert files.paths() == []


def _tree(tmp_path: Path) -> Path:
    src = FIXTURES / "proc" / "cgroup_v2" / "step0"
    shutil.copytree(src, tmp_path / "step0")
    return tmp_path / "step0"


def _names(collector: CgroupCollector, now: float) -> Set[Tuple[str, str]]:
    return {
        (s.metric, dict(s.labels)["name"])
        for s in collector.collect(now)
        if s.metric == "cgroup_memory_bytes"
    }


def test_cgroup_tree_is_walked_again_only_when_it_changes(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    collector = CgroupCollector(ProcFS(root / "proc", root / "sys"), top_n=100)
    before = _names(collector, 1000.0)
    for i in range(1, 5):
        assert _names(collector, 1000.0 + 30 * i) == before
    assert collector.walks == 1  # the link counts did not change: no new walk

    unit = root / "sys" / "fs" / "cgroup" / "system.slice" / "redis.service"
    unit.mkdir()
    (unit / "memory.current").write_text("1048576\n")
    assert ("cgroup_memory_bytes", "redis.service") in _names(collector, 1200.0)
    assert collector.walks == 2

    shutil.rmtree(unit)
    assert _names(collector, 1230.0) == before
    assert collector.walks == 3


def test_cgroup_tree_is_walked_again_every_rescan_cycles(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    collector = CgroupCollector(ProcFS(root / "proc", root / "sys"))
    for i in range(2 * RESCAN_CYCLES):
        collector.collect(1000.0 + 30 * i)
    assert collector.walks == 3  # the first cycle, then cycles RESCAN_CYCLES and 2 x RESCAN_CYCLES


def test_a_cgroup_that_vanished_below_a_unit_is_noticed_at_the_next_cycle(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    collector = CgroupCollector(ProcFS(root / "proc", root / "sys"), top_n=100)
    collector.collect(1000.0)
    # a leaf reported whole (a unit) keeps its parent's link count when only its memory
    # file goes (the controller detached): the failed read alone asks for a new walk
    unit = root / "sys" / "fs" / "cgroup" / "system.slice" / "nginx.service"
    (unit / "memory.current").unlink()
    names = _names(collector, 1030.0)
    assert ("cgroup_memory_bytes", "nginx.service") not in names
    assert collector.walks == 1
    (unit / "memory.current").write_text("2097152\n")
    assert ("cgroup_memory_bytes", "nginx.service") in _names(collector, 1060.0)
    assert collector.walks == 2
