"""One object for every path under /proc and /sys, so tests can point it at a captured tree.

Reading is kept apart from parsing: collectors call :meth:`ProcFS.read_text`
and hand the text to pure ``parse_*`` functions.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import weakref
from typing import Dict, Iterator, Optional, Tuple, Union

from sysops_agent.fsutil import StrPath

#: errno values that mean "this process went away while we were reading it".
#: ESRCH comes from some files of a zombie, ENOENT from a vanished directory.
_VANISHED = frozenset({errno.ENOENT, errno.ESRCH})

#: one read returns a whole /proc/<pid>/stat or status (the kernel fills the buffer at once);
#: longer files are read on in chunks of this size
_READ_CHUNK = 8192


#: at most this many per-process files kept open (:class:`KeptPidFiles`), and at most a
#: quarter of the soft RLIMIT_NOFILE (1,024 under the bundled unit's LimitNOFILE=4096)
KEEP_PIDS_MAX = 1024


class KeptPidFiles:
    """``/proc/<pid>/<name>`` of many processes kept open between reads.

    Opening and closing a ``stat`` costs the kernel almost as much as
    generating it (path walk, pid lookup, file setup): on the development machine, 1,100
    ``stat`` files cost 7.4 ms opened, read and closed, 3.4 ms read with
    ``pread(fd, n, 0)`` from descriptors kept open (each read regenerates the
    file, as for :mod:`sysops_agent.collectors.keptfiles`). A descriptor holds
    the *process*, not its number: once the process exits, reading it fails
    with ESRCH, also when the pid was reused since, so a reused pid is never
    read through its predecessor's descriptor. Only a live ``/proc`` is kept
    open (a captured tree, which tests rewrite file by file, is read by path),
    at most :attr:`limit` files, closed when this object is collected.
    """

    __slots__ = ("__weakref__", "_finalizer", "fds", "limit")

    def __init__(self, limit: Optional[int] = None) -> None:
        if limit is None:
            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            limit = KEEP_PIDS_MAX if soft == resource.RLIM_INFINITY else soft // 4
            limit = min(KEEP_PIDS_MAX, limit)
        self.limit = limit
        #: pid (as listed) -> descriptor
        self.fds: Dict[str, int] = {}
        self._finalizer = weakref.finalize(self, _close_all, self.fds)

    def __len__(self) -> int:
        return len(self.fds)

    def forget_except(self, listed: set[str]) -> None:
        """Close the descriptors of processes no longer listed."""
        fds = self.fds
        for entry in [e for e in fds if e not in listed]:
            with contextlib.suppress(OSError):
                os.close(fds.pop(entry))

    def close(self) -> None:
        _close_all(self.fds)


def _close_all(fds: Dict[str, int]) -> None:
    for fd in fds.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


class ProcessGone(Exception):
    """The process disappeared between listing /proc and reading its files."""


class AccessDenied(Exception):
    """We may not read this process's files (another user's, without CAP_DAC_READ_SEARCH)."""


class ProcFS:
    """Paths below a procfs root (default ``/proc``) and a sysfs root (default ``/sys``)."""

    def __init__(self, root: StrPath = "/proc", sys_root: StrPath = "/sys") -> None:
        self.root = os.fspath(root)
        self.sys_root = os.fspath(sys_root)
        #: whether this kernel reports the open descriptors as the size of
        #: ``/proc/<pid>/fd`` (Linux 6.2 and later; None: not seen yet)
        self._fd_dir_size: Optional[bool] = None

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

    def read_every_pid(
        self, name: str, kept: Optional[KeptPidFiles] = None
    ) -> Iterator[Tuple[int, Union[bytes, Exception]]]:
        """``(pid, contents of /proc/<pid>/<name>)`` for every process alive at listing time.

        In place of the contents, :class:`ProcessGone` for a process that
        vanished meanwhile and :class:`AccessDenied` for one we may not read.
        One loop over the listing with the reads inline: the per-process cost
        of the process collector's scan, which reads every ``stat`` each cycle.
        (Files of a process are assumed shorter than 8 KiB, as ``stat`` is.)
        With ``kept``, the files of a live ``/proc`` stay open between calls
        (:class:`KeptPidFiles`); a fully consumed call closes those of the
        processes no longer listed.
        """
        root = self.root
        read, open_, close, rdonly = os.read, os.open, os.close, os.O_RDONLY
        pread = os.pread
        fds = kept.fds if kept is not None and self.root_is_live() else None
        room = kept.limit - len(fds) if kept is not None and fds is not None else 0
        listed = os.listdir(root)
        for entry in listed:
            if not entry.isdigit():
                continue
            pid = int(entry)
            if fds is not None:
                fd = fds.get(entry)
                if fd is not None:
                    try:
                        data = pread(fd, _READ_CHUNK, 0)
                    except OSError:  # ESRCH: exited (its number may be reused): by path
                        del fds[entry]
                        close(fd)
                        room += 1
                    else:
                        yield pid, data
                        continue
            try:
                fd = open_(f"{root}/{entry}/{name}", rdonly)
            except OSError as e:
                yield pid, _translate(e, pid)
                continue
            try:
                data = read(fd, _READ_CHUNK)
            except OSError as e:
                close(fd)
                yield pid, _translate(e, pid)
                continue
            if room > 0 and fds is not None:
                fds[entry] = fd
                room -= 1
            else:
                close(fd)
            yield pid, data
        if kept is not None and fds is not None and len(fds) > 0:
            kept.forget_except(set(listed))

    def root_is_live(self) -> bool:
        """Whether the procfs root is the kernel's (``/proc``), not a captured tree."""
        root = os.fspath(self.root)  # tests replaying captured steps assign a Path
        return root == "/proc" or root.startswith("/proc/")

    def count_fds(self, pid: int) -> int:
        """Number of open descriptors of ``pid``.

        Since Linux 6.2 the size ``stat`` gives for ``/proc/<pid>/fd`` is that
        number (``proc_fd_getattr``): one call, no listing of hundreds of
        entries, and no ptrace-read access needed for other users' processes.
        Elsewhere (older kernels, where the size is 0, and a captured tree) the
        entries are listed, which needs that access.
        """
        path = f"{self.root}/{pid}/fd"
        try:
            if self._fd_dir_size is not False and self.root_is_live():
                size = os.stat(path).st_size
                if size > 0:
                    self._fd_dir_size = True
                    return size
            entries = os.listdir(path)
        except OSError as e:
            raise _translate(e, pid) from e
        if entries and self._fd_dir_size is None:
            self._fd_dir_size = False  # descriptors, yet a size of 0: list from now on
        return len(entries)


def _translate(e: OSError, pid: int) -> Exception:
    if e.errno in _VANISHED:
        return ProcessGone(pid)
    if e.errno in (errno.EACCES, errno.EPERM):
        return AccessDenied(pid)
    return e
