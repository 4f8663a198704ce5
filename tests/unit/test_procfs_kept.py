"""``/proc/<pid>/stat`` kept open between scans (``procfs.KeptPidFiles``), on the live /proc."""

from __future__ import annotations

import gc
import os
import subprocess
from pathlib import Path
from typing import Dict, Union

import pytest

from sysops_agent.procfs import KeptPidFiles, ProcessGone, ProcFS


def scan(procfs: ProcFS, kept: KeptPidFiles) -> Dict[int, Union[bytes, Exception]]:
    return dict(procfs.read_every_pid("stat", kept))


def cpu_ticks(stat: bytes) -> int:
    f = stat[stat.rfind(b")") + 2 :].split()
    return int(f[11]) + int(f[12])


def own_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_kept_file_gives_a_fresh_snapshot_each_time() -> None:
    procfs, kept = ProcFS(), KeptPidFiles(limit=100_000)
    me = os.getpid()
    before = scan(procfs, kept)[me]
    assert str(me) in kept.fds
    fd = kept.fds[str(me)]
    start = cpu_ticks(os.pread(fd, 8192, 0))
    x = 0
    while cpu_ticks(os.pread(fd, 8192, 0)) < start + 3:  # burn CPU until the kernel counts it
        x += 1
    after = scan(procfs, kept)[me]
    assert kept.fds[str(me)] == fd  # read through the same descriptor ...
    assert isinstance(before, bytes) and isinstance(after, bytes)
    assert cpu_ticks(after) >= cpu_ticks(before) + 3  # ... and not a cached copy


def test_an_exited_process_is_closed_and_a_reused_pid_read_afresh() -> None:
    procfs, kept = ProcFS(), KeptPidFiles(limit=100_000)
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert isinstance(scan(procfs, kept)[child.pid], bytes)
        dead_fd = kept.fds[str(child.pid)]
    finally:
        child.kill()
        child.wait()
    try:  # the descriptor holds the process, not its number
        os.pread(dead_fd, 8192, 0)
        raise AssertionError("a descriptor of an exited process still reads")
    except ProcessLookupError:
        pass  # ESRCH, as KeptPidFiles expects
    # the reaped child is no longer listed: its descriptor is closed (last, after the reads)
    scan(procfs, kept)
    assert str(child.pid) not in kept.fds
    with pytest.raises(OSError):
        os.fstat(dead_fd)
    # a listed pid whose kept descriptor holds an exited process (the pid was reused):
    # the new process is read by path, not reported gone
    me = str(os.getpid())
    os.close(kept.fds.pop(me))
    child = subprocess.Popen(["sleep", "60"])
    try:
        scan(procfs, kept)
        stale = kept.fds.pop(str(child.pid))
    finally:
        child.kill()
        child.wait()
    kept.fds[me] = stale
    data = scan(procfs, kept)[os.getpid()]
    assert isinstance(data, bytes) and data.startswith(f"{me} (".encode())
    assert os.pread(kept.fds[me], 8192, 0).startswith(f"{me} (".encode())


def test_at_most_limit_files_are_kept_and_every_process_is_still_read() -> None:
    procfs, kept = ProcFS(), KeptPidFiles(limit=3)
    for _ in range(2):
        result = scan(procfs, kept)
        assert os.getpid() in result and len(result) > 3
        assert len(kept) == 3 and {int(e) for e in kept.fds} <= set(result)


def test_the_descriptors_are_closed_with_their_owner() -> None:
    procfs = ProcFS()
    gc.collect()
    before = own_fds()
    kept = KeptPidFiles(limit=100_000)
    scan(procfs, kept)
    assert len(kept) > 0 and own_fds() == before + len(kept)
    del kept
    gc.collect()
    assert own_fds() == before


def test_a_captured_tree_is_read_by_path(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text("42 (a) S 1\n")
    procfs, kept = ProcFS(tmp_path), KeptPidFiles(limit=100)
    assert scan(procfs, kept) == {42: b"42 (a) S 1\n"}
    (tmp_path / "42" / "stat").write_text("42 (b) S 1\n")  # a test rewrites the tree
    assert scan(procfs, kept) == {42: b"42 (b) S 1\n"} and len(kept) == 0
    (tmp_path / "42" / "stat").unlink()
    assert isinstance(scan(procfs, kept)[42], ProcessGone)


def test_the_default_limit_leaves_room_under_the_soft_fd_limit() -> None:
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limit = KeptPidFiles().limit
    assert 0 < limit <= 1024 and (soft == resource.RLIM_INFINITY or limit <= soft // 4)
