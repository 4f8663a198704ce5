"""The README's "add a plugin" recipes, done for real on a copy of the source tree.

Each test copies ``src/``, applies exactly what the recipe says — one new
module, and in the package's registry its import and its ``Plugin(...)``
entry — and runs the agent from the copy in a fresh interpreter: the new
plugin is configured from TOML, validated by ``check-config`` and does its
job. If a recipe ever needs another edit (a schema table, a name list, the
daemon), the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List

import pytest

from sysops_agent.collectors.registry import COLLECTORS
from tests.support.paths import ROOT

SRC = ROOT / "src"

pytestmark = pytest.mark.slow


def _copy_src(tmp: Path) -> Path:
    dst = tmp / "src"
    shutil.copytree(SRC, dst, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dst


def _register(registry: Path, module: str, after_entry: str, entry: str) -> None:
    """The recipe's registry edit: import the module, add its entry after ``after_entry``."""
    lines = registry.read_text().splitlines(keepends=True)
    first_import = next(i for i, text in enumerate(lines) if text.startswith("from sysops_agent"))
    lines.insert(first_import, f"import {module}\n")
    index = next(i for i, text in enumerate(lines) if after_entry in text)
    lines.insert(index + 1, f"    {entry},\n")
    registry.write_text("".join(lines))


def _run(src: Path, args: List[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(src))
    return subprocess.run(
        [sys.executable, "-m", "sysops_agent", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


#: every registered collector: the recipe's config turns them all off but the new one
OTHER_COLLECTORS = tuple(p.name for p in COLLECTORS)

COLLECTOR = '''
"""Entropy available to the kernel's random pool (a recipe test's collector)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.model import Sample
from sysops_agent.procfs import ProcFS
from sysops_agent.schema import opt


@dataclass(frozen=True)
class EntropyConfig:
    enabled: bool = opt(True)
    interval_secs: float = interval_opt(30)
    scale: float = opt(1.0, min=0.0, help="multiply the reading")


class EntropyCollector:
    name = "entropy"

    def __init__(self, procfs: ProcFS, cfg: EntropyConfig) -> None:
        self.procfs = procfs
        self.interval = cfg.interval_secs
        self.scale = cfg.scale
        self.stats = CollectorStats()

    def collect(self, now: float) -> List[Sample]:
        bits = float(self.procfs.read_text("sys/kernel/random/entropy_avail"))
        return [Sample(now, "entropy_available_bits", bits * self.scale)]


def create(procfs: ProcFS, cfg: EntropyConfig) -> EntropyCollector:
    return EntropyCollector(procfs, cfg)
'''


def test_add_a_collector_is_one_module_and_one_registry_line(tmp_path: Path) -> None:
    src = _copy_src(tmp_path)
    pkg = src / "sysops_agent" / "collectors"
    (pkg / "entropy.py").write_text(COLLECTOR)
    entropy = "sysops_agent.collectors.entropy"
    _register(
        pkg / "registry.py",
        entropy,
        'Plugin("uptime", uptime.UptimeConfig, uptime.create)',
        f'Plugin("entropy", {entropy}.EntropyConfig, {entropy}.create)',
    )
    proc = tmp_path / "proc"
    (proc / "sys" / "kernel" / "random").mkdir(parents=True)
    (proc / "sys" / "kernel" / "random" / "entropy_avail").write_text("256\n")
    config = tmp_path / "agent.toml"
    config.write_text(
        "[collector.entropy]\nscale = 2.0\n"
        + "".join(f"[collector.{name}]\nenabled = false\n" for name in OTHER_COLLECTORS)
    )
    checked = _run(src, ["check-config", str(config)], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[collector.entropy]\nscale = -1\n")
    refused = _run(src, ["check-config", str(bad)], tmp_path)
    assert refused.returncode != 0 and "collector.entropy.scale" in refused.stdout + refused.stderr
    out = _run(
        src,
        [
            "collect",
            "--once",
            "--json",
            "--config",
            str(config),
            "--procfs",
            str(proc),
            "--interval",
            "0",
        ],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["metric"], r["value"]) for r in rows] == [("entropy_available_bits", 512.0)]


ANALYZER = '''
"""Flags every sample of a series above a fixed level (a recipe test's analyzer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, List, Tuple

from sysops_agent.analyzers.base import AnalyzerContext
from sysops_agent.analyzers.rules import RuleKey, Selector, toggle_key
from sysops_agent.model import Alert, Severity
from sysops_agent.schema import opt
from sysops_agent.storage.store import Store

NAME = "ceiling"


@dataclass(frozen=True)
class CeilingConfig:
    RULE_KEYS: ClassVar[Tuple[RuleKey, ...]] = (toggle_key(NAME),)

    enabled: bool = opt(True)
    level: float = opt(100.0, help="alert on any value above this")


class CeilingAnalyzer:
    name = NAME

    def __init__(self, cfg: CeilingConfig, ctx: AnalyzerContext) -> None:
        self.level = cfg.level
        self.hostname = ctx.hostname
        self.select = Selector(NAME, ctx.rules)
        self.seen = 0

    def analyze(self, store: Store, now: float) -> List[Alert]:
        out = []
        for key, buf in store.series():
            if not self.select(key):
                continue
            for ts, value in buf.last_n(buf.total - self.seen if buf.total > self.seen else 0):
                if value > self.level:
                    out.append(Alert(ts, self.hostname, Severity.CRITICAL, key.metric, value,
                                     self.level, f"{key.metric} above the ceiling", NAME))
            self.seen = buf.total
        return out


def create(cfg: CeilingConfig, ctx: AnalyzerContext) -> CeilingAnalyzer:
    return CeilingAnalyzer(cfg, ctx)
'''


def test_add_an_analyzer_is_one_module_and_one_registry_line(tmp_path: Path) -> None:
    src = _copy_src(tmp_path)
    pkg = src / "sysops_agent" / "analyzers"
    (pkg / "ceiling.py").write_text(ANALYZER)
    ceiling = "sysops_agent.analyzers.ceiling"
    _register(
        pkg / "registry.py",
        ceiling,
        'Plugin("leak", leak.LeakConfig, leak.create)',
        f'Plugin("ceiling", {ceiling}.CeilingConfig, {ceiling}.create)',
    )
    config = tmp_path / "agent.toml"
    config.write_text(
        textwrap.dedent(
            """
            [analyzer.ceiling]
            level = 50.0
            [[analyzer.rules]]
            metric = "other_*"
            ceiling = false
            """
        )
    )
    checked = _run(src, ["check-config", str(config)], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    data = tmp_path / "series.jsonl"
    data.write_text(
        "".join(
            json.dumps({"ts": 1000 + 10 * i, "metric": m, "value": v}) + "\n"
            for i, (m, v) in enumerate(
                [("app_queue", 10.0), ("app_queue", 70.0), ("other_x", 90.0)]
            )
        )
    )
    out = _run(src, ["replay", str(data), "--config", str(config)], tmp_path)
    assert out.returncode == 0, out.stderr
    alerts = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(a["analyzer"], a["metric"], a["value"]) for a in alerts] == [
        ("ceiling", "app_queue", 70.0)
    ]


LOG_SOURCE = '''
"""Reads one file once, at start (a recipe test's log source)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Optional

from sysops_agent.logwatch.source import SourceContext
from sysops_agent.schema import opt


@dataclass(frozen=True)
class OnceConfig:
    enabled: bool = opt(False)
    path: str = opt("", help="the file to read once")


class OnceSource:
    name = "once"

    def __init__(self, path: str, ctx: SourceContext) -> None:
        self.path = path
        self.ctx = ctx

    async def run(self) -> None:
        with open(self.path, "rb") as f:
            for hit in self.ctx.matcher.scan(f.read()):
                self.ctx.deliver("once", hit, {})
        await asyncio.Event().wait()  # until cancelled

    def save_state(self) -> None:
        pass

    def close(self) -> None:
        pass


def create(cfg: OnceConfig, ctx: SourceContext) -> Optional[OnceSource]:
    return OnceSource(cfg.path, ctx) if cfg.enabled else None
'''


def test_add_a_log_source_is_one_module_and_one_registry_line(tmp_path: Path) -> None:
    from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs

    src = _copy_src(tmp_path)
    pkg = src / "sysops_agent" / "logwatch"
    (pkg / "once.py").write_text(LOG_SOURCE)
    once = "sysops_agent.logwatch.once"
    _register(
        pkg / "registry.py",
        once,
        'Plugin("files", LogConfig, tail.create)',
        f'Plugin("once", {once}.OnceConfig, {once}.create)',
    )
    log = tmp_path / "old.log"
    log.write_text("Dec  1 03:00:00 h app[7]: nginx: upstream-recipe-marker segfault at 0 ip 0\n")
    config = agent_config(tmp_path, minimal_procfs(tmp_path))
    text = config.read_text().replace(
        "[collector.log]\nenabled = false\n",
        f'[collector.log]\nkmsg = false\njournal = false\nfiles = ["{tmp_path / "none.log"}"]\n'
        f'[collector.log.once]\nenabled = true\npath = "{log}"\n',
    )
    config.write_text(text)
    checked = _run(src, ["check-config", str(config)], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    agent = AgentProcess(
        ["run", "--config", str(config)], env=dict(os.environ, PYTHONPATH=str(src)), cwd=tmp_path
    )
    try:
        line = agent.wait_line("log_segfault", "upstream-recipe-marker")
        assert "[once]" in line or "source=once" in line
    finally:
        assert agent.stop() == 0, "".join(agent.stderr)
