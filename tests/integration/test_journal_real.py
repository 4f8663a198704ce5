"""The journal source with the real ``journalctl`` where a journal is running."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Optional

import pytest

from tests.unit.logwatch.test_journal import Harness


def journal_running() -> Optional[str]:
    """Why the real journal cannot be used here, or None when it can."""
    exe = shutil.which("journalctl")
    if exe is None:
        return "journalctl is not installed"
    if not Path("/run/systemd/journal/socket").exists():
        return "no systemd-journald is running (/run/systemd/journal/socket missing)"
    if shutil.which("logger") is None:
        return "no logger command to write a test entry"
    return None


@pytest.mark.skipif(journal_running() is not None, reason=str(journal_running()))
async def test_real_journalctl(tmp_path: Path) -> None:
    h = Harness(tmp_path / "data", real_clock=True)
    h.start()
    await h.until(lambda: h.src.proc is not None)
    await asyncio.sleep(1.0)  # let journalctl reach the end of the journal
    marker = uuid.uuid4().hex[:8]
    subprocess.run(
        ["logger", "-t", "sysops-test", f"upstream timed out (110) client: 10.9.9.9 {marker}"],
        check=True,
    )
    await h.until(lambda: any(marker in a.message for a in h.alerts), timeout=15)
    await h.stop()
