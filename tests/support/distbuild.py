"""Shared by the packaging tests: build ``sysops-agent.pyz`` once per test session.

The build (``deploy/build_pyz.py``, what ``make dist`` runs) goes into the
session's temporary directory, never into the checkout's ``dist/``.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "deploy" / "build_pyz.py"
#: a system interpreter, as on a server (unprivileged users can reach it, unlike ~/.pyenv)
SYSTEM_PYTHON = "/usr/bin/python3"


def built_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.getbasetemp() / "dist-build"
    pyz = out / "sysops-agent.pyz"
    if not pyz.exists():
        proc = subprocess.run(
            [sys.executable, str(BUILD_SCRIPT), "--dist", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"build failed:\n{proc.stdout}\n{proc.stderr}"
    return pyz


def python39() -> Optional[str]:
    """pyenv's Python 3.9 (the oldest we support), when installed."""
    home = os.path.expanduser("~/.pyenv/versions")
    preferred = os.path.join(home, "3.9.18", "bin", "python3")
    if os.access(preferred, os.X_OK):
        return preferred
    found = sorted(glob.glob(os.path.join(home, "3.9.*", "bin", "python3")))
    return found[-1] if found else None


def old_pythons() -> List[str]:
    """pyenv's Pythons older than 3.9 (2.7, 3.6 as on RHEL 8/CentOS 7, ...), when installed."""
    home = os.path.expanduser("~/.pyenv/versions")
    found = []
    for minor in ("2.7", "3.6", "3.7", "3.8"):
        names = sorted(glob.glob(os.path.join(home, f"{minor}.*", "bin", "python")))
        found += names[-1:]
    return found


def system_python() -> Optional[str]:
    """The distribution's own python3 when it is >= 3.9."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return None
    proc = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", "import sys; print(sys.version_info >= (3, 9))"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return SYSTEM_PYTHON if proc.stdout.strip() == "True" else None
