"""Kernel pseudo-files kept open and read again with ``pread(fd, n, 0)``.

Opening a file under /proc or /sys costs more than reading it: the path is
looked up component by component (``/proc/net`` is a symlink to
``/proc/self/net``, each cgroup directory a kernfs lookup), and closing it
is another system call. These files are generated anew by every read from
offset 0 (seq_file restarts its iterator at position 0; sysfs and sysctl
files call their handler on each read), so a file opened once and read with
``pread(fd, n, 0)`` gives a fresh snapshot each cycle for one system call
instead of three. Measured on the development machine (kernel 6.18):
``/proc/net/netstat`` 73 -> 33 us, a cgroup v1 ``memory.usage_in_bytes``
6.4 -> 0.7 us, ``/sys/class/net/eth0/operstate`` 8.3 -> 0.8 us.

Only paths below ``/proc/`` and ``/sys/`` are kept open: anything else (a
captured fixture tree, which a test may replace file by file) is opened and
closed on every read, as before. A kept file whose kernel object went away
(a removed cgroup or network interface: ENODEV; a process: ESRCH; a sysctl
whose module was unloaded: ENOENT) is closed and opened again once by path,
so a cgroup or interface re-created under the same name is followed. At most
``limit`` files are kept per owner; beyond that a path is read the old way,
so 500 containers do not mean 500 descriptors. Descriptors are close-on-exec
(Python's default) and closed when the owner is garbage-collected.
"""

from __future__ import annotations

import contextlib
import errno
import os
import weakref
from typing import Dict, Iterable, List, Optional

#: one pread returns a whole control file; longer ones are read on in chunks of this size
CHUNK = 8192

#: errno of reading a kept file whose kernel object is gone: reopen by path once
#: (EIO: a procfs entry removed while open); a fresh descriptor failing the same way
#: raises, except for these ...
_GONE = frozenset({errno.ENODEV, errno.ESRCH, errno.ENOENT, errno.ESTALE, errno.EIO})
#: ... which mean the file went away between our open and read: None, as if absent
_VANISHED = frozenset({errno.ENODEV, errno.ESRCH, errno.ENOENT})

#: the kernel's pseudo file systems, whose files regenerate their content on each read
KEEP_PREFIXES = ("/proc/", "/sys/")


def _close_all(fds: Dict[str, int]) -> None:
    for fd in fds.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


def _read_from(fd: int, first: bytes) -> bytes:
    """The rest of a file longer than one chunk, after ``first``."""
    chunks = [first]
    offset = len(first)
    while True:
        chunk = os.pread(fd, CHUNK, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


class KeptFiles:
    """Reads whole files, keeping kernel pseudo-files open between reads (see module doc)."""

    __slots__ = ("__weakref__", "_fds", "_finalizer", "limit")

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self._fds: Dict[str, int] = {}
        self._finalizer = weakref.finalize(self, _close_all, self._fds)

    def __len__(self) -> int:
        return len(self._fds)

    def read(self, path: str) -> Optional[bytes]:
        """The file's content; None when it does not exist (ENOENT, ENOTDIR).

        Other errors (EOPNOTSUPP from a PSI file with ``psi=0``, EINVAL from the
        ``speed`` of a link that is down, EACCES) are raised to the caller.
        """
        fd = self._fds.get(path)
        if fd is not None:
            try:
                data = os.pread(fd, CHUNK, 0)
            except OSError as e:
                if e.errno not in _GONE:
                    raise
                self.forget(path)  # the object went away: try the path afresh below
            else:
                return data if len(data) < CHUNK else _read_from(fd, data)
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        keep = len(self._fds) < self.limit and path.startswith(KEEP_PREFIXES)
        try:
            data = os.pread(fd, CHUNK, 0)
            if len(data) == CHUNK:
                data = _read_from(fd, data)
        except OSError as e:
            os.close(fd)
            if e.errno in _VANISHED:  # removed between open and read
                return None
            raise
        if keep:
            self._fds[path] = fd
        else:
            os.close(fd)
        return data

    def text(self, path: str) -> Optional[str]:
        """:meth:`read` decoded (ASCII files: invalid bytes become U+FFFD)."""
        data = self.read(path)
        return None if data is None else data.decode("utf-8", "replace")

    def paths(self) -> List[str]:
        """The paths kept open."""
        return list(self._fds)

    def forget(self, path: str) -> None:
        """Close the kept descriptor of ``path``, if any."""
        fd = self._fds.pop(path, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def keep_only(self, paths: Iterable[str]) -> None:
        """Close every kept descriptor whose path is not in ``paths``."""
        wanted = set(paths)
        for path in [p for p in self._fds if p not in wanted]:
            self.forget(path)

    def close(self) -> None:
        _close_all(self._fds)
