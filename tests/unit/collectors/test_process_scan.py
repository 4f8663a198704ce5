"""The process collector reads one file per process and the expensive ones only for the tracked
(issue 17, item 7): ``stat`` for all, ``fd/`` and ``io`` for the top N and the pattern matches,
nothing else."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional, Tuple, Union

import pytest

from sysops_agent.collectors.common import ParseError
from sysops_agent.collectors.process import IO_DENIED, ProcessCollector, parse_pid_io
from sysops_agent.procfs import AccessDenied, KeptPidFiles, ProcFS


def stat_line(pid: int, comm: str, rss: int, state: str = "S", flags: int = 4194560) -> str:
    fields = [str(pid), f"({comm})", state, "1", str(pid), str(pid), "0", "-1", str(flags)]
    fields += ["100", "0", "0", "0", str(pid * 3), str(pid), "0", "0", "20", "0", "4", "0"]
    fields += [str(5000 + pid), str(rss * 4096), str(rss)] + ["0"] * 28
    return " ".join(fields) + "\n"


def tree(root: Path, n: int) -> None:
    for i in range(n):
        pid = 100 + i
        (root / str(pid) / "fd").mkdir(parents=True)
        comm = "postgres: writer" if i % 10 == 0 else f"worker-{i}"
        (root / str(pid) / "stat").write_text(stat_line(pid, comm, rss=1000 + i))
        (root / str(pid) / "status").write_text("must not be read\n")
        for fd in range(3):
            (root / str(pid) / "fd" / str(fd)).touch()
    (root / "2").mkdir()  # a kernel thread: counted, never tracked
    (root / "2" / "stat").write_text(stat_line(2, "kthreadd", rss=0, flags=0x00200000))
    (root / "3").mkdir()  # a zombie
    (root / "3" / "stat").write_text(stat_line(3, "defunct", rss=5, state="Z"))


class Recording(ProcFS):
    def __init__(self, root: str) -> None:
        super().__init__(root, root)
        self.calls: List[Tuple[str, object]] = []

    def read_every_pid(self, name: str, kept: Optional[KeptPidFiles] = None):  # type: ignore[no-untyped-def]
        self.calls.append(("every", name))
        return super().read_every_pid(name, kept)

    def read_pid_bytes(self, pid: int, name: str) -> bytes:
        self.calls.append(("read", (pid, name)))
        return super().read_pid_bytes(pid, name)

    def count_fds(self, pid: int) -> int:
        self.calls.append(("fds", pid))
        return super().count_fds(pid)


def test_one_pass_over_stat_then_fd_only_for_the_tracked(tmp_path: Path) -> None:
    tree(tmp_path, 200)
    procfs = Recording(str(tmp_path))
    c = ProcessCollector(
        procfs, top_n=5, track_patterns=("postgres*",), clk_tck=100, page_size=4096
    )
    out = c.collect(1000.0)
    assert [s.value for s in out if s.metric == "process_count"] == [202.0]
    assert procfs.calls.count(("every", "stat")) == 1
    fd_pids = sorted(int(str(pid)) for kind, pid in procfs.calls if kind == "fds")
    top5 = list(range(295, 300))
    postgres = [100 + i for i in range(0, 200, 10)]
    assert fd_pids == sorted(set(top5) | set(postgres))
    reads = [arg for kind, arg in procfs.calls if kind == "read"]
    assert sorted(reads) == [(pid, "io") for pid in fd_pids]  # no status, no second stat
    names = {dict(s.labels)["name"] for s in out if s.metric == "process_rss_bytes"}
    assert "postgres: writer" in names and "kthreadd" not in names and "defunct" not in names


def test_vanished_and_unreadable_processes_in_the_scan(tmp_path: Path) -> None:
    tree(tmp_path, 3)

    class Flaky(ProcFS):
        def read_every_pid(self, name: str, kept: Optional[KeptPidFiles] = None):  # type: ignore[no-untyped-def]
            from sysops_agent.procfs import AccessDenied, ProcessGone

            items: List[Tuple[int, Union[bytes, Exception]]] = list(
                super().read_every_pid(name, kept)
            )
            items.append((9998, ProcessGone(9998)))
            items.append((9999, AccessDenied(9999)))
            return iter(items)

    c = ProcessCollector(Flaky(str(tmp_path), str(tmp_path)), clk_tck=100, page_size=4096)
    out = c.collect(1000.0)
    assert [s.value for s in out if s.metric == "process_count"] == [
        6.0
    ]  # 3 + kthread + zombie + denied
    assert c.stats.vanished == 1 and c.stats.permission_denied == 1


def test_io_rates_of_the_tracked_processes(tmp_path: Path) -> None:
    tree(tmp_path, 3)
    io = tmp_path / "102" / "io"
    io.write_text("rchar: 9\nread_bytes: 4096\nwrite_bytes: 1000\ncancelled_write_bytes: 0\n")
    c = ProcessCollector(ProcFS(str(tmp_path), str(tmp_path)), clk_tck=100, page_size=4096)
    first = c.collect(1000.0)
    assert not [s for s in first if s.metric.startswith("process_io_")]  # no previous reading
    io.write_text("rchar: 9\nread_bytes: 24576\nwrite_bytes: 1000\ncancelled_write_bytes: 0\n")
    rates = {
        s.metric: (dict(s.labels)["pid"], s.value)
        for s in c.collect(1010.0)
        if s.metric.startswith("process_io_")
    }
    assert rates == {  # 100 and 101 have no io file: no samples, not an error
        "process_io_read_bytes_per_second": ("102", 2048.0),
        "process_io_write_bytes_per_second": ("102", 0.0),
    }
    assert c.stats.vanished == 0 and not c.stats.skipped


def test_an_unreadable_io_is_counted_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tree(tmp_path, 3)

    class NoPtrace(ProcFS):
        def read_pid_bytes(self, pid: int, name: str) -> bytes:
            if name == "io":
                raise AccessDenied(pid)
            return super().read_pid_bytes(pid, name)

    c = ProcessCollector(NoPtrace(str(tmp_path), str(tmp_path)), clk_tck=100, page_size=4096)
    with caplog.at_level(logging.WARNING, "sysops_agent.collectors.process"):
        for now in (1000.0, 1010.0, 1020.0):
            out = c.collect(now)
    assert c.stats.skipped == {IO_DENIED: 9}  # 3 tracked x 3 cycles
    assert c.stats.permission_denied == 0  # the rest of each process was read
    said = [r for r in caplog.records if "/io" in r.getMessage()]
    assert len(said) == 1 and "CAP_SYS_PTRACE" in said[0].getMessage()
    assert {s.metric for s in out} == {
        "process_count",
        "process_rss_bytes",
        "process_threads",
        "process_fd_count",
        "process_cpu_percent",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"rchar: 1\nwchar: 2\nread_bytes: 3\nwrite_bytes: 4\ncancelled_write_bytes: 5\n", (3, 4)),
        (b"write_bytes: 0\nread_bytes: 18446744073709551615\n", (18446744073709551615, 0)),
        (b"rchar: 1\n", None),
        (b"read_bytes: x\nwrite_bytes: 4\n", None),
        (b"", None),
    ],
)
def test_parse_pid_io(text: bytes, expected: Optional[Tuple[int, int]]) -> None:
    if expected is None:
        with pytest.raises(ParseError):
            parse_pid_io(text)
    else:
        assert parse_pid_io(text) == expected


class Synthetic(ProcFS):
    """``n`` processes whose ``stat`` lines are made as the scan reads them (no files)."""

    def __init__(self, n: int, comm_len: int = 900) -> None:
        super().__init__("/nonexistent", "/nonexistent")
        self.n, self.comm_len = n, comm_len

    def read_every_pid(self, name: str, kept: Optional[KeptPidFiles] = None):  # type: ignore[no-untyped-def]
        for i in range(self.n):
            pid = 1000 + i
            comm = f"w{i}-".ljust(self.comm_len, "x")[:15] + "y" * (self.comm_len - 15)
            yield pid, stat_line(pid, comm, rss=1 + i % 7).encode()


def test_a_scan_of_many_processes_holds_only_the_top_n_lines() -> None:
    """A spike of processes left the worker threads' memory higher for good: the scan held
    every process's ``stat`` until it ranked them (5,000 lines of ~1 KB here)."""
    import tracemalloc

    collector = ProcessCollector(Synthetic(5000), top_n=20)
    tracemalloc.start()
    try:
        count, chosen, cpu = collector._scan()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 5000 and len(chosen) == 20 and len(cpu) == 5000
    assert peak < 2_000_000, f"the scan held {peak} bytes"  # 5,000 lines alone are 5 MB


def test_the_top_n_among_equal_rss_are_the_first_seen_then_the_matches_in_scan_order() -> None:
    collector = ProcessCollector(Synthetic(30, comm_len=20), top_n=5, track_patterns=("w2*",))
    _, chosen, _ = collector._scan()
    pids = [int(line.split(b" ", 1)[0]) for line in chosen]
    # RSS is 1 + i % 7: the 7s are i = 6, 13, 20, 27, then the 6s: i = 5 (first seen)
    assert pids[:5] == [1006, 1013, 1020, 1027, 1005]
    assert pids[5:] == [1002, 1021, 1022, 1023, 1024, 1025, 1026, 1028, 1029]
