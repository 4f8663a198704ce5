"""The README's "Add a channel" and "Add a pipeline stage" recipes, carried out.

* A channel: a copy of the package gets one new module (config class, factory,
  channel) and one line in ``CHANNELS`` (plus its name in the registry's
  import list); nothing else changes. In a fresh interpreter the new channel
  is configured from ``[alerting.echo]``, checked by ``check-config``'s
  loader, built by the registry and sent to by the alert manager.
* A stage: a throwaway stage put into the stage lists (monkeypatched) is built
  by the manager, called on every alert, and called again with ``[]`` when it
  said it is due; the manager is not edited.
* The sample TOML documents exactly the registered channels.
"""

from __future__ import annotations

import asyncio
import dataclasses
import filecmp
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List, Optional, Sequence

import pytest

from sysops_agent.alerting import pipeline
from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.alerting.manager import AlertManager
from sysops_agent.alerting.pipeline import Lane
from sysops_agent.channels.registry import CHANNELS
from sysops_agent.clock import VirtualClock
from sysops_agent.model import Alert, Severity
from tests.support.paths import ROOT

SRC = ROOT / "src" / "sysops_agent"

ECHO_MODULE = '''\
"""A channel that appends each alert's metric to a file (the recipe's example)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

from sysops_agent.channels.base import SEVERITIES, ChannelContext, missing, severity_of
from sysops_agent.model import Alert
from sysops_agent.schema import Problem, opt


@dataclass(frozen=True)
class EchoChannelConfig:
    enabled: bool = opt(False)
    path: str = opt("", help="file the metric names are appended to")
    prefix: str = opt("echo:", help="written before each name")
    min_severity: str = opt("warn", choices=SEVERITIES)

    def problems(self, path: str) -> List[Problem]:
        return missing(self, path, ["path"])


class EchoChannel:
    name = "echo"
    supports_batch = True
    rate_limited = True

    def __init__(self, cfg: EchoChannelConfig) -> None:
        self.cfg = cfg
        self.min_severity = severity_of(cfg.min_severity)
        self.disabled: Optional[str] = None

    async def send(self, alerts: Sequence[Alert], *, mention: bool = False) -> None:
        with open(self.cfg.path, "a") as f:
            for alert in alerts:
                f.write(f"{self.cfg.prefix}{alert.metric} mention={mention}\\n")

    async def aclose(self) -> None:
        return None


def create(cfg: EchoChannelConfig, ctx: ChannelContext) -> EchoChannel:
    return EchoChannel(cfg)
'''

DRIVER = """\
import asyncio, sys
from sysops_agent.channels.registry import build_alert_manager
from sysops_agent.clock import SystemClock
from sysops_agent.config import load_config
from sysops_agent.model import Alert, Severity
from sysops_agent.redact import Redactor

out = sys.argv[1]
bad = load_config(text="[alerting.echo]\\nenabled = true\\n", env={})
print("problems:", [str(p) for p in bad.problems])
good = load_config(
    text=f"[alerting.console]\\nenabled = false\\n"
    f"[alerting.echo]\\nenabled = true\\npath = {out!r}\\nprefix = 'E>'\\n",
    env={},
)
assert good.problems == [], good.problems

async def main():
    m = build_alert_manager(good.config.alerting, SystemClock(), Redactor())
    print("channels:", m.channel_names)
    m.submit(Alert(0.0, "web1", Severity.CRITICAL, "disk_full", 99.0, 90.0, "full", "threshold"))
    await m.close(5.0)
    print("counters:", m.counters())

asyncio.run(main())
"""


def test_add_a_channel_is_one_module_and_one_registry_line(tmp_path: Path) -> None:
    pkg = tmp_path / "src" / "sysops_agent"
    shutil.copytree(SRC, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    # the recipe: the module ...
    (pkg / "channels" / "echo.py").write_text(ECHO_MODULE)
    # ... and the registry line (the module's name joins the import list)
    registry = pkg / "channels" / "registry.py"
    text = registry.read_text()
    text = text.replace("    discord,\n", "    discord,\n    echo,\n", 1)
    line = '    Plugin("echo", echo.EchoChannelConfig, echo.create),\n'
    text = re.sub(
        r"(CHANNELS: .*?\n)(\))",
        lambda m: m.group(1) + line + m.group(2),
        text,
        count=1,
        flags=re.S,
    )
    registry.write_text(text)

    # nothing else differs from the real package
    changed = _differences(filecmp.dircmp(SRC, pkg, ignore=["__pycache__"]))
    assert changed == ["channels/echo.py", "channels/registry.py"]
    added = [ln for ln in text.splitlines() if ln not in (SRC / "channels/registry.py").read_text()]
    assert added == ["    echo,", line.rstrip("\n")]

    out = tmp_path / "echo.out"
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(out)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "problems: ['alerting.echo.path: required when the channel is enabled']",
        "channels: ['echo']",
        "counters: {'echo': (1, 0)}",
    ]
    assert out.read_text() == "E>disk_full mention=True\n"


def _differences(cmp: filecmp.dircmp[str], prefix: str = "") -> List[str]:
    out = [f"{prefix}{n}" for n in cmp.left_only + cmp.right_only + cmp.diff_files]
    for name, sub in cmp.subdirs.items():
        out += _differences(sub, f"{prefix}{name}/")
    return sorted(out)


# -- a pipeline stage -------------------------------------------------------------


class HoldStage:
    """Holds every alert for ``secs``, then lets it go (the recipe's example)."""

    def __init__(self, secs: float) -> None:
        self.secs = secs
        self.held: List[tuple[float, Alert]] = []
        self.calls = 0

    def __call__(self, alerts: List[Alert], now: float) -> List[Alert]:
        self.calls += 1
        self.held += [(now + self.secs, a) for a in alerts]
        due = [a for t, a in self.held if t <= now]
        self.held = [(t, a) for t, a in self.held if t > now]
        return due

    def next_due(self) -> Optional[float]:
        return min((t for t, _ in self.held), default=None)

    def flush(self, now: float) -> List[Alert]:
        out = [a for _, a in self.held]
        self.held = []
        return out


class DropStage:
    """Drops alerts of one metric (a lane stage, like a silence)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric

    def __call__(self, alerts: List[Alert], now: float) -> List[Alert]:
        return [a for a in alerts if a.metric != self.metric]

    def next_due(self) -> Optional[float]:
        return None

    def flush(self, now: float) -> List[Alert]:
        return []


class Recorder:
    name = "rec"
    supports_batch = True
    rate_limited = True
    min_severity = Severity.WARN

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.disabled: Optional[str] = None
        self.sent: List[tuple[float, List[str]]] = []

    async def send(self, alerts: Sequence[Alert], *, mention: bool = False) -> None:
        self.sent.append((self.clock.monotonic(), [a.metric for a in alerts]))

    async def aclose(self) -> None:
        return None


def _alert(metric: str) -> Alert:
    return Alert(0.0, "web1", Severity.WARN, metric, 1.0, 0.0, "m", "threshold")


async def test_add_a_stage_is_one_module_and_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    holds: List[HoldStage] = []

    def create_hold(cfg: PipelineConfig) -> HoldStage:
        holds.append(HoldStage(30.0))
        return holds[-1]

    def create_drop(cfg: PipelineConfig, lane: Lane) -> DropStage:
        return DropStage("noise")

    # the recipe's one line in each list
    monkeypatch.setattr(pipeline, "STAGES", (*pipeline.STAGES, create_hold))
    monkeypatch.setattr(pipeline, "LANE_STAGES", (create_drop, *pipeline.LANE_STAGES))

    clock = VirtualClock()
    rec = Recorder(clock)
    manager = AlertManager(PipelineConfig(), [rec], clock)
    task = asyncio.ensure_future(manager.run())
    try:
        manager.submit(_alert("disk"))
        manager.submit(_alert("noise"))
        await clock.advance(29.0)
        assert rec.sent == [] and len(holds[0].held) == 2
        await clock.advance(1.0)  # the hold is due: the manager called it with []
        await clock.advance(5.0)  # then the group window
        assert rec.sent == [(35.0, ["disk"])]
        assert holds[0].calls > 2
    finally:
        await manager.close(5.0)
        await asyncio.wait_for(task, 1.0)


def test_the_stage_lists_build_today_s_pipeline() -> None:
    clock = VirtualClock()
    cfg = PipelineConfig()
    assert [type(s).__name__ for s in pipeline.build_stages(cfg)] == [
        "FiringStage",
        "DedupStage",
        "FlapStage",
        "InhibitStage",
        "SilenceStage",
        "RepeatStage",
    ]
    lane = Lane("slack", supports_batch=True, rate_limited=True, clock=clock)
    names = [type(s).__name__ for s in pipeline.build_lane_stages(cfg, lane)]
    assert names == ["RateLimitStage", "GroupStage"]
    self_throttled = Lane("alertmanager", supports_batch=True, rate_limited=False, clock=clock)
    names = [type(s).__name__ for s in pipeline.build_lane_stages(cfg, self_throttled)]
    assert names == ["GroupStage"]


# -- the sample config --------------------------------------------------------------


def test_the_sample_config_documents_exactly_the_registered_channels() -> None:
    sample = (ROOT / "config" / "sysops-agent.toml").read_text()
    tables = re.findall(r"^\[alerting\.([a-z_]+)\]", sample, re.M)
    pipeline_tables = {f.name for f in dataclasses.fields(PipelineConfig)}  # [alerting.heartbeat]
    assert sorted(set(tables) - pipeline_tables) == sorted(p.name for p in CHANNELS)


def test_the_registry_imports_no_heavy_library() -> None:
    code = textwrap.dedent(
        """
        import sys
        from sysops_agent import lazyssl
        lazyssl.import_asyncio()  # as the daemon starts: asyncio without ssl
        import sysops_agent.channels.registry as r
        r.AlertingConfig()
        heavy = ("sysops_agent.httpclient", "aiosmtplib", "ssl", "email.message", "urllib.parse", "html")
        print(" ".join(m for m in heavy if m in sys.modules) or "none")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["none"]
