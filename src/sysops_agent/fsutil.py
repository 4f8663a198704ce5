"""Paths as strings, and the one way the agent writes its small files.

The daemon's modules use :mod:`os` and :mod:`os.path` rather than
:mod:`pathlib`: pathlib (with the urllib.parse it imports) costs 0.6 MiB of
RSS, 2 % of the memory budget, for no behaviour the daemon needs. The
commands that are not the daemon (``history``) are free to use it.
"""

from __future__ import annotations

import os
from typing import Union

#: what path parameters accept: a str or anything os.fspath() takes (pathlib in tests)
StrPath = Union[str, "os.PathLike[str]"]


def read_text(path: StrPath) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def write_atomic(path: str, text: str, *, fsync: bool = False) -> None:
    """Replace ``path`` with ``text`` via ``.<name>.<pid>`` beside it and a rename.

    Creates the parent directory. Readers see the old or the new content, never
    a part; with ``fsync`` the new content is on disk before the rename.
    """
    parent, name = os.path.split(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{name}.{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
