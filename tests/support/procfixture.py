"""Replay captured /proc trees: ``tests/fixtures/proc/<case>/stepN/{proc,sys,statvfs.json}``.

Shared by the table-driven fixture test and ``tests/fixtures/capture_proc.py``.

``<case>/expected.json``::

    {
      "description": "what the case is about",
      "collectors": ["cpu", ...],          # optional, default: every enabled collector
      "config_toml": "[collector.x]\\n...",  # optional overrides
      "clk_tck": 100, "page_size": 4096,   # optional, the captured host's values
      "steps": [
        {"dir": "step0", "now": 1000.0,
         "samples": [[metric, {labels}, value], ...],   # exactly these, values approx
         "errors": {"memory": "text in the message"},   # optional: collector raises ParseError
         "stats": {"process": {"vanished": 1, "permission_denied": 0}},  # optional
         "state": {"disk_io.bytes": 2}}                 # optional: len() of tracker attributes
      ]
    }
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional

from sysops_agent.collectors import disk_usage, process
from sysops_agent.collectors.base import Collector, CollectorFactory
from sysops_agent.collectors.registry import build_collectors
from sysops_agent.config import Config, load_config
from sysops_agent.procfs import ProcFS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "proc"


class FakeStatVfs(NamedTuple):
    f_frsize: int
    f_blocks: int
    f_bfree: int
    f_bavail: int
    f_files: int
    f_ffree: int


class StepStatVfs:
    """``statvfs`` replayed from ``statvfs.json`` (mount point -> fields) of the current step.

    A mount point missing from the file behaves like an unreachable mount (OSError).
    """

    def __init__(self) -> None:
        self.results: Dict[str, FakeStatVfs] = {}

    def load(self, step_dir: Path) -> None:
        path = step_dir / "statvfs.json"
        raw = json.loads(path.read_text()) if path.exists() else {}
        self.results = {mp: FakeStatVfs(**fields) for mp, fields in raw.items()}

    def __call__(self, mountpoint: str) -> FakeStatVfs:
        try:
            return self.results[mountpoint]
        except KeyError:
            raise FileNotFoundError(2, "not in statvfs.json", mountpoint) from None


class Replay:
    """All collectors of a case, pointed at one step after another."""

    def __init__(self, case_dir: Path, spec: Dict[str, Any]) -> None:
        self.case_dir = case_dir
        self.spec = spec
        result = load_config(text=spec.get("config_toml", ""), env={})
        if result.problems:
            raise ValueError(f"{case_dir.name}: bad config_toml: {result.problems}")
        self.config: Config = result.config
        self.procfs = ProcFS(case_dir / "missing", case_dir / "missing")
        self.statvfs = StepStatVfs()
        clk_tck = int(spec.get("clk_tck", 100))
        page_size = int(spec.get("page_size", 4096))

        def make_disk_usage(p: ProcFS, c: disk_usage.DiskUsageConfig) -> Collector:
            return disk_usage.create(p, c, statvfs=self.statvfs)

        def make_process(p: ProcFS, c: process.ProcessConfig) -> Collector:
            return process.create(p, c, clk_tck=clk_tck, page_size=page_size)

        #: registry overrides: statvfs and the host constants come from the fixture
        self.factories: Dict[str, CollectorFactory] = {
            "disk_usage": make_disk_usage,
            "process": make_process,
        }
        collectors = build_collectors(self.procfs, self.config.collector, self.factories)
        wanted: Optional[List[str]] = spec.get("collectors")
        if wanted is not None:
            collectors = [c for c in collectors if c.name in wanted]
            missing = set(wanted) - {c.name for c in collectors}
            if missing:
                raise ValueError(f"{case_dir.name}: unknown or disabled collectors {missing}")
        self.collectors = collectors

    def enter(self, step: Dict[str, Any]) -> None:
        step_dir = self.case_dir / step["dir"]
        if not step_dir.is_dir():
            raise ValueError(f"{self.case_dir.name}: no step directory {step['dir']}")
        self.procfs.root = step_dir / "proc"
        self.procfs.sys_root = step_dir / "sys"
        self.statvfs.load(step_dir)


def load_spec(case_dir: Path) -> Dict[str, Any]:
    spec: Dict[str, Any] = json.loads((case_dir / "expected.json").read_text())
    return spec


def cases() -> List[Path]:
    return sorted(p for p in FIXTURES.iterdir() if (p / "expected.json").is_file())
