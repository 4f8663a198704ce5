"""Talking to a running test agent through its command line: ``status``, waiting on it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List

if TYPE_CHECKING:
    from tests.support.agentproc import AgentProcess


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``sysops-agent ARGS...`` in a subprocess, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "sysops_agent", *args], capture_output=True, text=True, timeout=30
    )


def alerts_now(cfg: Path) -> List[Dict[str, Any]]:
    """The firing alerts, or none while the (re)starting agent does not answer yet."""
    r = cli("status", "--json", "--config", str(cfg))
    return [] if r.returncode == 3 else list(json.loads(r.stdout)["alerts"])


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.2)


def lines(agent: AgentProcess, *needles: str) -> List[str]:
    """The agent's output lines holding every one of ``needles``."""
    return [line for line in agent.stdout if all(n in line for n in needles)]
