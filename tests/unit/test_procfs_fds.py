"""``ProcFS.count_fds``: the size of ``/proc/<pid>/fd`` where the kernel reports it (issue 17).

Listing ``/proc/<pid>/fd`` of the 20 tracked processes was half of the process
collector's time; since Linux 6.2 ``stat`` gives the count as the directory's
size, in one call and without ptrace-read access.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List

import pytest

from sysops_agent.procfs import AccessDenied, ProcFS


def _size_reported() -> bool:
    return os.stat(f"/proc/{os.getpid()}/fd").st_size > 0


needs_size = pytest.mark.skipif(not _size_reported(), reason="kernel before 6.2: no fd count size")


@needs_size
def test_the_count_follows_the_descriptors_without_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    procfs = ProcFS()
    listed: List[Any] = []
    listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p: listed.append(p) or listdir(p))
    before = procfs.count_fds(os.getpid())
    files = [open(os.devnull) for _ in range(7)]  # noqa: SIM115
    try:
        assert procfs.count_fds(os.getpid()) == before + 7
    finally:
        for f in files:
            f.close()
    assert listed == []


def test_a_kernel_without_the_size_is_listed_and_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    procfs = ProcFS()
    real_stat = os.stat
    stats: List[str] = []

    def old_kernel(path: Any, *a: Any, **kw: Any) -> Any:
        if str(path).endswith("/fd"):
            stats.append(str(path))
            return os.stat_result((0o40500, 0, 0, 2, 0, 0, 0, 0, 0, 0))  # size 0
        return real_stat(path, *a, **kw)

    monkeypatch.setattr(os, "stat", old_kernel)
    listed = len(os.listdir(f"/proc/{os.getpid()}/fd"))
    assert procfs.count_fds(os.getpid()) in (listed - 1, listed, listed + 1)
    assert procfs.count_fds(os.getpid()) > 0
    assert len(stats) == 1  # the second count did not ask again


def test_a_captured_tree_is_always_listed(tmp_path: Path) -> None:
    """A directory's size on a real filesystem is not a count: only the live /proc has one."""
    fd = tmp_path / "42" / "fd"
    fd.mkdir(parents=True)
    for n in range(3):
        (fd / str(n)).touch()
    assert ProcFS(str(tmp_path)).count_fds(42) == 3


@needs_size
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_other_users_processes_are_counted_without_privilege() -> None:
    """As nobody, listing /proc/1/fd is refused; the count is still read."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, count pid 1's descriptors
        os.close(read)
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                os.listdir("/proc/1/fd")
                verdict = b"listed"
            except PermissionError:
                n = ProcFS().count_fds(1)
                verdict = b"counted %d" % n
        except BaseException as e:
            verdict = repr(e).encode()
        os.write(write, verdict)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        verdict = f.read()
    os.waitpid(pid, 0)
    assert verdict.startswith(b"counted "), verdict
    assert int(verdict.split()[1]) > 0


def test_access_denied_without_the_size_is_still_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    procfs = ProcFS()

    def denied(path: Any) -> Any:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "stat", lambda p, *a, **k: os.stat_result((0o40500,) + (0,) * 9))
    monkeypatch.setattr(os, "listdir", denied)
    with pytest.raises(AccessDenied):
        procfs.count_fds(1)
