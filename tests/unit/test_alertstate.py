"""The daemon's alert-state save (``alertstate.py`` via ``Daemon.save_alert_state``).

The file must never say "notified" of an alert that is not yet in the durable
outbox: an alert still in the queue between the analyzers and the manager when
the state is saved would otherwise be lost by a SIGKILL (the restarted analyzer
believes it was sent and does not fire again).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List

import pytest

from sysops_agent import alertstate
from sysops_agent.alerting.manager import AlertManager
from sysops_agent.alerting.outbox import Outbox
from sysops_agent.analysis import AnalysisTick
from sysops_agent.analyzers.registry import build_analyzers
from sysops_agent.clock import VirtualClock
from sysops_agent.config import load_config
from sysops_agent.daemon import Daemon
from tests.unit.alerting.test_manager import MemoryChannel, settle

T0 = 1_780_000_000.0


async def test_the_state_is_saved_only_after_the_alert_queue_reached_the_outbox(
    tmp_path: Path,
) -> None:
    loaded = load_config(text=f'[agent]\ndata_dir = "{tmp_path}"\n', env={})
    clock = VirtualClock(T0)
    daemon = Daemon(loaded, None, clock=clock)
    daemon.analysis = AnalysisTick(build_analyzers(loaded.config, "web1"))
    hook = MemoryChannel("webhook", batch=False)
    hook.clock = clock
    outbox = Outbox(str(tmp_path / "outbox.db"))
    daemon.manager = AlertManager(loaded.config.alerting, [hook], clock, outbox=outbox)
    daemon.store.add(T0, "memory_usage_percent", 95.0)
    daemon.run_analyzers()  # the analyzer fired: the alert is in the queue
    assert len(daemon.alerts) == 1 and outbox.pending() == 0

    daemon.save_alert_state()
    assert len(daemon.alerts) == 0 and outbox.pending("webhook") == 1
    saved = json.loads(Path(alertstate.state_path(str(tmp_path))).read_text())
    assert [f["metric"] for f in saved["analyzers"]["threshold"]] == ["memory_usage_percent"]
    await settle()
    assert [a.metric for a in hook.alerts] == ["memory_usage_percent"]
    await daemon.manager.close(1.0)


async def test_an_unchanged_state_is_not_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: an idle agent wrote and fsynced the same file every minute."""
    writes: List[str] = []
    write_atomic = alertstate.write_atomic

    def counted(path: str, text: str, **kw: Any) -> None:
        writes.append(text)
        write_atomic(path, text, **kw)

    monkeypatch.setattr(alertstate, "write_atomic", counted)
    loaded = load_config(text=f'[agent]\ndata_dir = "{tmp_path}"\n', env={})
    clock = VirtualClock(T0)
    daemon = Daemon(loaded, None, clock=clock)
    daemon.analysis = AnalysisTick(build_analyzers(loaded.config, "web1"))
    path = Path(alertstate.state_path(str(tmp_path)))
    daemon.save_alert_state()
    daemon.save_alert_state()
    assert len(writes) == 1

    daemon.store.add(T0, "memory_usage_percent", 95.0)
    daemon.run_analyzers()  # a firing alert: the state changed
    daemon.save_alert_state()
    daemon.save_alert_state()
    assert len(writes) == 2
    assert json.loads(path.read_text())["analyzers"]["threshold"]

    path.unlink()  # removed behind the agent's back: written again
    daemon.save_alert_state()
    assert len(writes) == 3 and json.loads(path.read_text())["analyzers"]["threshold"]
