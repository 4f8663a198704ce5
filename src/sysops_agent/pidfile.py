"""The PID file: refuse a second agent, take over a stale file, remove on exit.

The file is only ever replaced when it holds a PID (or is empty): a path that
names a directory, a symlink, a FIFO or a file with other content
(``pid_file = "/etc/important.conf"``) is refused, never overwritten and never
deleted. It is written 0600 through :func:`~sysops_agent.fsutil.write_atomic`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import Optional

from sysops_agent.fsutil import StrPath, path_fix, write_atomic

#: a PID file is a few bytes; anything longer is not one
_MAX_BYTES = 64

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class PidFileError(Exception):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read(path: str) -> Optional[bytes]:
    """The file's first bytes; None when there is no file. Raises PidFileError if not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise PidFileError(
                f"PID file {path} is a symlink; refusing to follow it "
                "(agent.pid_file must name a regular file)"
            ) from None
        if e.errno == errno.EISDIR:
            raise PidFileError(
                f"PID file {path} is a directory; set agent.pid_file to a file path "
                f"such as {os.path.join(path, 'sysops-agent.pid')}"
            ) from None
        raise
    try:
        st_mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(st_mode):
            raise PidFileError(
                f"PID file {path} is a directory; set agent.pid_file to a file path "
                f"such as {os.path.join(path, 'sysops-agent.pid')}"
            )
        if not stat.S_ISREG(st_mode):
            raise PidFileError(
                f"PID file {path} is not a regular file; refusing to replace it "
                "(agent.pid_file must name a regular file)"
            )
        return os.read(fd, _MAX_BYTES + 1)
    finally:
        os.close(fd)


def _parse(data: bytes) -> Optional[int]:
    text = data.strip()
    return int(text) if text.isdigit() and len(text) <= 10 else None


def read_pid(path: str) -> Optional[int]:
    """The PID in ``path``; None when there is none (or the file is not a PID file)."""
    try:
        data = _read(path)
    except (PidFileError, OSError):
        return None
    return None if data is None else _parse(data)


class PidFile:
    def __init__(self, path: StrPath) -> None:
        self.path = os.fspath(path)
        self.took_over: Optional[int] = None

    def acquire(self) -> None:
        """Write our PID; raise :class:`PidFileError` if a live agent holds the file.

        Also raises it (with the key and a fix) for a path that is not a PID
        file or cannot be written; never a traceback.
        """
        try:
            data = _read(self.path)
        except OSError as e:
            raise PidFileError(self._cannot("read", e)) from None
        except ValueError as e:  # an embedded NUL byte
            raise PidFileError(f"agent.pid_file {self.path!r} is not a valid path: {e}") from None
        old = None if data is None else _parse(data)
        if data is not None and data.strip() and old is None:
            raise PidFileError(
                f"{self.path} exists and does not hold a PID; refusing to replace it. "
                "Set agent.pid_file to a path of its own (e.g. /run/sysops-agent/sysops-agent.pid)"
            )
        if old is not None and old != os.getpid() and _alive(old):
            raise PidFileError(
                f"another sysops-agent is running (pid {old}, PID file {self.path}); "
                "stop it first, or remove the PID file if that process is not an agent"
            )
        if old is not None:
            self.took_over = old
        try:
            write_atomic(self.path, f"{os.getpid()}\n")
        except OSError as e:
            raise PidFileError(self._cannot("write", e)) from None

    def _cannot(self, what: str, e: OSError) -> str:
        parent = os.path.dirname(os.path.abspath(self.path))
        return (
            f"cannot {what} the PID file {self.path} (agent.pid_file): {e.strerror or e}. "
            + path_fix(parent)
        )

    def release(self) -> None:
        if read_pid(self.path) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
