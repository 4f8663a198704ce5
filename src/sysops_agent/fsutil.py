"""Paths as strings, and the one way the agent creates and writes its files.

The daemon's modules use :mod:`os` and :mod:`os.path` rather than
:mod:`pathlib`: pathlib (with the urllib.parse it imports) costs 0.6 MiB of
RSS, 2 % of the memory budget, for no behaviour the daemon needs. The
commands that are not the daemon (``history``) are free to use it.

Every file the agent creates (the PID file, ``agent.log``, the log cursors
``files.state``/``kmsg.state``, the SQLite database) is opened here with
``O_NOFOLLOW`` — a symlink planted in its place is refused, never followed —
and gets :data:`PRIVATE` (0600) whatever the umask: the mode is set with
``fchmod`` on the open descriptor, not left to ``umask``. Temporary files are
also ``O_EXCL``. An existing file with looser bits is tightened
(:func:`tighten`), or the failure is reported when it is someone else's.
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import List, Optional, Union

#: what path parameters accept: a str or anything os.fspath() takes (pathlib in tests)
StrPath = Union[str, "os.PathLike[str]"]

#: the mode of every file the agent creates (the database may be 0640: storage.sqlite_group)
PRIVATE = 0o600

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def read_text(path: StrPath) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def tighten(fd: int, mode: int = PRIVATE) -> Optional[str]:
    """Give the open file ``fd`` no more permission bits than ``mode``.

    Returns None when the mode already was or now is right; otherwise the text
    of a warning (the file belongs to another user and cannot be changed).
    """
    st = os.fstat(fd)
    current = stat.S_IMODE(st.st_mode)
    if current & ~mode == 0:
        return None
    try:
        os.fchmod(fd, current & mode)
    except OSError as e:
        return f"mode is {current:04o} and cannot be changed to {mode:04o}: {e.strerror or e}"
    return None


def sqlite_files(path: str) -> List[str]:
    """A SQLite database's files: ``path`` itself and the ``-wal`` and ``-shm`` that exist.

    SQLite gives ``-wal`` and ``-shm`` the database file's mode when it creates
    them; the callers set the database's mode before it opens and tighten the
    side files that an earlier run (or a crash) left with looser bits.
    """
    return [path] + [path + s for s in ("-wal", "-shm") if os.path.lexists(path + s)]


def open_private(path: str, flags: int, mode: int = PRIVATE) -> int:
    """``os.open(path, flags | O_CREAT | O_NOFOLLOW)`` with the file's mode forced to ``mode``.

    Raises :class:`OSError` (``ELOOP`` for a symlink) like :func:`os.open`; an
    existing file with looser bits is tightened (or left, when it is not ours:
    the caller decides whether that matters by calling :func:`tighten` itself).
    """
    fd = os.open(path, flags | os.O_CREAT | _NOFOLLOW | _CLOEXEC, mode)
    try:
        tighten(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_new(path: str, mode: int = PRIVATE) -> int:
    """A new file at ``path`` (``O_EXCL|O_NOFOLLOW``), mode ``mode`` whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_atomic(path: str, text: str, *, fsync: bool = False, mode: int = PRIVATE) -> None:
    """Replace ``path`` with ``text`` via ``.<name>.<pid>`` beside it and a rename.

    Creates the parent directory. Readers see the old or the new content, never
    a part; with ``fsync`` the new content is on disk before the rename. The
    temporary file is created with ``O_EXCL|O_NOFOLLOW`` and ``mode``: a file or
    symlink already at its name (a crash's leftover, or planted) is removed and
    the creation tried once more, so a symlink is never followed.
    """
    parent, name = os.path.split(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{name}.{os.getpid()}")
    try:
        fd = create_new(tmp, mode)
    except FileExistsError:
        os.unlink(tmp)  # unlinks a symlink itself, never its target
        fd = create_new(tmp, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def path_fix(directory: str) -> str:
    """The advice for a directory the agent cannot create files in."""
    if directory == "/run" or directory.startswith("/run/"):
        return (
            f"Create {directory} owned by sysops-agent, or use RuntimeDirectory= in the unit "
            "(RuntimeDirectory=sysops-agent gives /run/sysops-agent)"
        )
    return f"Create {directory} owned by (or writable by) the user the agent runs as"
