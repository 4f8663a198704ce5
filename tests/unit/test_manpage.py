"""sysops-agent(1), generated from the argparse definitions (deploy/build_manpage.py):
complete, and clean for man, groff and mandoc."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sysops_agent import cli
from tests.support.paths import ROOT

GENERATOR = ROOT / "deploy" / "build_manpage.py"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("man") / "man1" / "sysops-agent.1"
    subprocess.run(
        [sys.executable, str(GENERATOR), str(out)],
        check=True,
        timeout=60,
        env=dict(os.environ, SOURCE_DATE_EPOCH="1767225600"),
    )
    return out


def rendered(page: Path) -> str:
    man = shutil.which("man")
    if man is None:
        pytest.skip("man is not installed")
    proc = subprocess.run(
        [man, "--warnings", "-l", str(page)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="", LC_ALL="C.UTF-8"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr  # groff's warnings (-ww) land here
    return proc.stdout


def test_every_command_and_option_is_in_the_page(page: Path) -> None:
    text = rendered(page)
    flat = " ".join(text.split())
    assert text.startswith("SYSOPS-AGENT(1)")
    assert "2026-01-01" in text  # SOURCE_DATE_EPOCH: reproducible
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "FILES"):
        assert f"\n{section}\n" in text, section
    parser = cli.build_parser()
    for command in cli.COMMANDS:
        sub = cli._subparser(parser, command)
        assert f"sysops-agent {command}" in text, command
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for opt in action.option_strings:
                assert opt in text, (command, opt)
        if sub.epilog and "Exit status" in sub.epilog:
            assert " ".join(sub.epilog.split()) in flat, command
    assert "NOTIFY_SOCKET" in text and "WATCHDOG_USEC" in text


def test_mandoc_lint_is_clean(page: Path) -> None:
    mandoc = shutil.which("mandoc")
    if mandoc is None:
        pytest.skip("mandoc is not installed (make system-deps installs it)")
    proc = subprocess.run(
        [mandoc, "-T", "lint", "-W", "warning", str(page)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr


def test_groff_has_no_warnings(page: Path) -> None:
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed")
    proc = subprocess.run(
        [groff, "-man", "-ww", "-z", str(page)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
