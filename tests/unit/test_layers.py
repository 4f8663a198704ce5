"""Imports go down the layers (STYLE.md, issue 11): a table of layers, checked with ``ast``.

Layers, bottom to top::

    0  model, clock, units, schema, plugins, procfs, fsutil, redact (and the
       other small helpers: rates, queues, lazyssl, osinfo, agent_logging, pidfile,
       throttle, httpclient)
    1  collectors, storage, logwatch
    2  analyzers (they read the ring buffers of storage)
    3  alerting
    4  channels, exporters
    5  config, scheduler, cardinality, analysis, selfmetrics, daemon, commands, cli, replay, __main__

A module may import its own package and anything below; layer 0 (helpers)
and layer 5 (the application) may also import within their layer. Every other edge must be in
:data:`ALLOWED`, with the reason; an edge in :data:`ALLOWED` that no longer
exists fails too, so the list only shrinks. Each ``channels`` module that
imports from ``alerting`` something other than the channel contract
(``alerting.channel``, ``alerting.text``) names that module in its docstring.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, Set, Tuple

import pytest

from tests.support.paths import ROOT

SRC = ROOT / "src" / "sysops_agent"

LAYERS: Dict[str, int] = {
    **dict.fromkeys(
        (
            "sysops_agent",
            "model",
            "clock",
            "units",
            "schema",
            "plugins",
            "procfs",
            "fsutil",
            "redact",
            "rates",
            "queues",
            "lazyssl",
            "osinfo",
            "agent_logging",
            "pidfile",
            "sdnotify",
            "throttle",
            "httpclient",
        ),
        0,
    ),
    **dict.fromkeys(("collectors", "storage", "logwatch"), 1),
    "analyzers": 2,
    "alerting": 3,
    **dict.fromkeys(("channels", "exporters"), 4),
    **dict.fromkeys(
        (
            "config",
            "config_checks",
            "scheduler",
            "cardinality",
            "analysis",
            "alertstate",
            "selfmetrics",
            "daemon",
            "control",
            "control_api",
            "commands",
            "cli",
            "replay",
            "__main__",
        ),
        5,
    ),
}

#: the application layer: its modules wire everything and may import each other
TOP = 5

#: (importing unit, imported unit) -> why the edge exists
ALLOWED: Dict[Tuple[str, str], str] = {}

#: what a channel module may import from alerting without saying why
CHANNEL_CONTRACT = {"sysops_agent.alerting.channel", "sysops_agent.alerting.text"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports_of(path: Path) -> Iterator[str]:
    """Every ``sysops_agent`` module ``path`` imports (at any level, TYPE_CHECKING included)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from pkg import mod`` imports the module pkg.mod when there is one
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                for a in node.names
            ]
        else:
            continue
        yield from (n for n in names if n == "sysops_agent" or n.startswith("sysops_agent."))


def edges() -> Dict[Tuple[str, str], Set[str]]:
    """(importing unit, imported unit) -> the importing modules."""
    out: Dict[Tuple[str, str], Set[str]] = {}
    for module, path in MODULES.items():
        for target in imports_of(path):
            a, b = _unit(module), _unit(target)
            if a != b:
                out.setdefault((a, b), set()).add(module)
    return out


def test_every_module_has_a_layer() -> None:
    assert sorted({_unit(m) for m in MODULES} - set(LAYERS)) == []


def test_imports_go_down_the_layers() -> None:
    bad = []
    for (a, b), modules in sorted(edges().items()):
        downward = LAYERS[b] < LAYERS[a] or LAYERS[a] == LAYERS[b] in (0, TOP)
        if not downward and (a, b) not in ALLOWED:
            bad.append(
                f"{a} (layer {LAYERS[a]}) imports {b} (layer {LAYERS[b]}): {sorted(modules)}"
            )
    assert bad == []


def test_every_allowed_exception_is_still_needed() -> None:
    assert sorted(set(ALLOWED) - set(edges())) == []


def test_alerting_does_not_import_channels() -> None:
    assert ("alerting", "channels") not in edges()


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _unit(m) == "channels"))
def test_a_channel_module_states_why_it_imports_more_than_the_contract(module: str) -> None:
    path = MODULES[module]
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    for target in sorted(set(imports_of(path))):
        if _unit(target) == "alerting" and target not in CHANNEL_CONTRACT:
            assert target in doc, f"{module} imports {target} without saying why in its docstring"


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    """The parser finds an upward import (so the checks above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from sysops_agent.channels import registry\n")
    assert list(imports_of(bad)) == ["sysops_agent.channels.registry"]
