"""The PID file: refuse a second agent, take over a stale file, remove on exit."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Optional


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


def read_pid(path: Path) -> Optional[int]:
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class PidFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(f"{os.getpid()}\n")
        os.replace(tmp, self.path)

    def release(self) -> None:
        if read_pid(self.path) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
