"""One object for every path under /proc and /sys, so tests can point it at a captured tree.

Reading is kept apart from parsing: collectors call :meth:`ProcFS.read_text`
and hand the text to pure ``parse_*`` functions.
"""

from __future__ import annotations

import errno
import os
from typing import Iterator, Tuple, Union

from sysops_agent.fsutil import StrPath

#: errno values that mean "this process went away while we were reading it".
#: ESRCH comes from some files of a zombie, ENOENT from a vanished directory.
_VANISHED = frozenset({errno.ENOENT, errno.ESRCH})

#: one read returns a whole /proc/<pid>/stat or status (the kernel fills the buffer at once);
#: longer files are read on in chunks of this size
_READ_CHUNK = 8192


class ProcessGone(Exception):
    """The process disappeared between listing /proc and reading its files."""


class AccessDenied(Exception):
    """We may not read this process's files (another user's, without CAP_DAC_READ_SEARCH)."""


class ProcFS:
    """Paths below a procfs root (default ``/proc``) and a sysfs root (default ``/sys``)."""

    def __init__(self, root: StrPath = "/proc", sys_root: StrPath = "/sys") -> None:
        self.root = os.fspath(root)
        self.sys_root = os.fspath(sys_root)

    def __repr__(self) -> str:
        return f"ProcFS(root={self.root!r}, sys_root={self.sys_root!r})"

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def read_text(self, *parts: str) -> str:
        """Read a whole file at once. procfs files are generated on read: one read = one snapshot."""
        with open(os.path.join(self.root, *parts), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def pids(self) -> Iterator[int]:
        """Numeric entries of the procfs root: the process ids alive at listing time.

        A procfs root that does not exist is an error (OSError), not an empty list."""
        for name in os.listdir(self.root):
            if name.isdigit():
                yield int(name)

    def read_pid(self, pid: int, name: str) -> str:
        """Read ``/proc/<pid>/<name>``, translating a vanished or forbidden process."""
        return self.read_pid_bytes(pid, name).decode("utf-8", "replace")

    def read_pid_bytes(self, pid: int, name: str) -> bytes:
        """:meth:`read_pid` without the decoding (the process collector parses bytes).

        This runs for every process every cycle, so it avoids pathlib and
        buffered file objects: a string path and raw ``os.open``/``os.read``
        cost about half as much CPU per file.
        """
        try:
            fd = os.open(f"{self.root}/{pid}/{name}", os.O_RDONLY)
            try:
                data = os.read(fd, _READ_CHUNK)
                if len(data) == _READ_CHUNK:  # rare: a long file (cmdline, maps)
                    chunks = [data]
                    while chunk := os.read(fd, _READ_CHUNK):
                        chunks.append(chunk)
                    data = b"".join(chunks)
            finally:
                os.close(fd)
        except OSError as e:
            raise _translate(e, pid) from e
        return data

    def read_every_pid(self, name: str) -> Iterator[Tuple[int, Union[bytes, Exception]]]:
        """``(pid, contents of /proc/<pid>/<name>)`` for every process alive at listing time.

        In place of the contents, :class:`ProcessGone` for a process that
        vanished meanwhile and :class:`AccessDenied` for one we may not read.
        One loop over the listing with the reads inline: the per-process cost
        of the process collector's scan, which reads every ``stat`` each cycle.
        (Files of a process are assumed shorter than 8 KiB, as ``stat`` is.)
        """
        root = self.root
        read, open_, close, rdonly = os.read, os.open, os.close, os.O_RDONLY
        for entry in os.listdir(root):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                fd = open_(f"{root}/{entry}/{name}", rdonly)
                try:
                    data = read(fd, _READ_CHUNK)
                finally:
                    close(fd)
            except OSError as e:
                yield pid, _translate(e, pid)
                continue
            yield pid, data

    def count_fds(self, pid: int) -> int:
        """Number of entries in ``/proc/<pid>/fd`` (needs ptrace-read access for others' pids)."""
        try:
            return len(os.listdir(f"{self.root}/{pid}/fd"))
        except OSError as e:
            raise _translate(e, pid) from e


def _translate(e: OSError, pid: int) -> Exception:
    if e.errno in _VANISHED:
        return ProcessGone(pid)
    if e.errno in (errno.EACCES, errno.EPERM):
        return AccessDenied(pid)
    return e
