"""The PID file: refuse a second agent, take over a stale file, remove on exit."""

from __future__ import annotations

import contextlib
import os
from typing import Optional

from sysops_agent.fsutil import StrPath, read_text, write_atomic


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


def read_pid(path: str) -> Optional[int]:
    try:
        text = read_text(path).strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class PidFile:
    def __init__(self, path: StrPath) -> None:
        self.path = os.fspath(path)
        self.took_over: Optional[int] = None

    def acquire(self) -> None:
        """Write our PID; raise :class:`PidFileError` if a live agent holds the file."""
        old = read_pid(self.path)
        if old is not None and old != os.getpid() and _alive(old):
            raise PidFileError(
                f"another sysops-agent is running (pid {old}, PID file {self.path}); "
                "stop it first, or remove the PID file if that process is not an agent"
            )
        if old is not None:
            self.took_over = old
        write_atomic(self.path, f"{os.getpid()}\n")

    def release(self) -> None:
        if read_pid(self.path) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
