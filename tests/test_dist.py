"""``make dist``: the wheel and the single-file ``sysops-agent.pyz`` on a bare Python >= 3.9."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import List

import pytest

from sysops_agent import __version__
from tests.distbuild import ROOT, built_pyz, python39, system_python

#: pure-Python runtime dependencies (and the backports 3.9/3.10 need) vendored in the archive
VENDORED = [
    "sysops_agent",
    "httpx",
    "httpcore",
    "anyio",
    "h11",
    "certifi",
    "idna",
    "aiosmtplib",
    "tomli",
    "exceptiongroup",
]


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_pyz(tmp_path_factory)


def interpreters() -> List[str]:
    """Python 3.9 (pyenv) and the system python3; the current one when neither exists."""
    found = [p for p in (python39(), system_python()) if p]
    return found or [sys.executable]


def run_pyz(python: str, pyz: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # -I: isolated mode, no PYTHONPATH, no user site, not the checkout on sys.path
    return subprocess.run(
        [python, "-I", str(pyz), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_wheel_and_archive_are_built(pyz: Path) -> None:
    wheels = list(pyz.parent.glob(f"sysops_agent-{__version__}-py3-none-any.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as whl:
        names = whl.namelist()
    assert "sysops_agent/cli.py" in names
    assert not [n for n in names if "__pycache__" in n]
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")


def test_archive_is_pure_python_with_dependencies_vendored(pyz: Path) -> None:
    with zipfile.ZipFile(pyz) as zf:
        names = zf.namelist()
    top = {n.split("/", 1)[0] for n in names}
    for package in VENDORED:
        assert package in top, f"{package} missing from the .pyz"
    compiled = [n for n in names if n.endswith((".so", ".pyd", ".dll", ".dylib"))]
    assert compiled == []
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "__main__.py" in names


@pytest.mark.parametrize("python", interpreters())
def test_version(python: str, pyz: Path, tmp_path: Path) -> None:
    proc = run_pyz(python, pyz, "--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"sysops-agent {__version__}"


@pytest.mark.parametrize("python", interpreters())
def test_collect_once_json(python: str, pyz: Path, tmp_path: Path) -> None:
    proc = run_pyz(python, pyz, "collect", "--once", "--json", "--interval", "0.2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    samples = [json.loads(line) for line in proc.stdout.splitlines()]
    metrics = {s["metric"] for s in samples}
    for name in ("cpu_usage_percent", "memory_usage_percent", "load_avg_1m", "process_count"):
        assert name in metrics
    assert all(set(s) == {"ts", "metric", "labels", "value"} for s in samples)
    mem = next(s for s in samples if s["metric"] == "memory_usage_percent")
    assert 0 < mem["value"] <= 100


@pytest.mark.parametrize("python", interpreters())
def test_check_config_reads_toml_and_every_dependency_imports(
    python: str, pyz: Path, tmp_path: Path
) -> None:
    """On 3.9/3.10 the config goes through the vendored tomli; every vendored package imports."""
    proc = run_pyz(
        python, pyz, "check-config", str(ROOT / "config" / "sysops-agent.toml"), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    code = (
        f"import sys; sys.path.insert(0, {str(pyz)!r}); "
        "import httpx, httpcore, anyio, h11, certifi, idna, aiosmtplib; "
        "import sysops_agent.config, sysops_agent.daemon; "
        "print(httpx.__file__)"
    )
    imported = subprocess.run(
        [python, "-I", "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip().startswith(str(pyz))
