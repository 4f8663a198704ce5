"""``--version`` and ``--help`` import neither asyncio nor the config machinery (issue 17, item 8).

They cost ~0.1 s of CPU when ``cli.main`` imported asyncio and every command
module (with ``config``) first; ``bench/startup.py`` prints the cost.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import List

import pytest

from sysops_agent import cli

#: modules a command needs and ``--version`` / ``--help`` must not pay for
HEAVY = [
    "asyncio",
    "ssl",
    "sysops_agent.config",
    "sysops_agent.schema",
    "sysops_agent.commands",
    "sysops_agent.daemon",
    "tomllib",
    "tomli",
    "json",
    "logging",
]

PROBE = """
import sys
from sysops_agent import cli
try:
    status = cli.main({argv!r})
except SystemExit as e:
    status = e.code
print("STATUS", status, file=sys.stderr)
print("MODULES", " ".join(sorted(sys.modules)), file=sys.stderr)
"""


def imported_by(argv: List[str]) -> tuple[set[str], str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = proc.stderr.splitlines()
    modules = next(line for line in lines if line.startswith("MODULES ")).split()[1:]
    status = next(line for line in lines if line.startswith("STATUS ")).split()[1]
    return set(modules), status, proc.stdout


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["-h"], []])
def test_cheap_commands_import_nothing_heavy(argv: List[str]) -> None:
    modules, status, out = imported_by(argv)
    assert sorted(m for m in HEAVY if m in modules) == []
    assert status == ("2" if argv == [] else "0")
    if argv == ["--version"]:
        assert out.startswith("sysops-agent ")


def test_a_command_still_gets_asyncio_through_lazyssl() -> None:
    modules, status, _ = imported_by(["check-config", "--help"])
    assert status == "0"
    assert "asyncio" in modules and "sysops_agent.config" in modules


def _command_helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: str(a.help) for a in action._choices_actions}
    raise AssertionError("no sub-commands")


def test_the_light_help_says_what_the_commands_say() -> None:
    light = cli.build_parser([], light=True)
    full = cli.build_parser([])
    assert _command_helps(light) == _command_helps(full) == cli.SUMMARIES
    assert light.format_help() == full.format_help()
    assert list(cli.SUMMARIES) == list(cli.COMMANDS)
