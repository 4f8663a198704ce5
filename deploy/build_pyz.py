"""Build ``sysops-agent.pyz``: one file that runs with nothing but a system Python >= 3.9.

Usage: ``python deploy/build_pyz.py [--dist DIR]`` (what ``make dist`` runs): builds the
wheel ``DIR/sysops_agent-<version>-py3-none-any.whl`` from a clean copy of the
sources (so stale files in ``build/`` can never land in it), then
``DIR/sysops-agent.pyz``. ``--wheel FILE`` skips the wheel build.

The project wheel and its runtime dependencies are installed with pip into a
staging directory *as if for Python 3.9 on any platform* (``--python-version
3.9 --platform any --only-binary=:all:``): pip picks versions that still
support 3.9 and can only pick pure-Python ``py3-none-any`` wheels; the
backports older Pythons need are named explicitly (see :data:`BACKPORTS`).
The staging directory is then checked for compiled extensions (the build
fails if one slipped in), stripped of ``__pycache__`` and console-script
shims, and zipped with :mod:`zipapp` behind a ``#!/usr/bin/env python3`` line.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zipapp
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent
#: the oldest Python we support: resolving for it pulls in every backport newer ones skip
TARGET_PYTHON = "3.9"
#: files that would tie the archive to one interpreter or platform
COMPILED_SUFFIXES = (".so", ".pyd", ".dll", ".dylib")
MAIN = "sysops_agent.cli:main"
#: pip evaluates environment markers for the interpreter it runs under, not for
#: ``--python-version``: name the backports that Python 3.9/3.10 need explicitly
#: (``tomli`` for the config, ``exceptiongroup``/``typing_extensions`` for anyio)
BACKPORTS = ["tomli>=2.0", "exceptiongroup>=1.0.2", "typing_extensions>=4.5"]


#: what a wheel is built from (pyproject.toml names README.md as the long description)
SOURCES = ("pyproject.toml", "README.md", "src")


def build_wheel(dist: Path, python: str = sys.executable, source: Path = ROOT) -> Path:
    """``pip wheel`` of a fresh copy of the project; returns the wheel's path."""
    dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sysops-wheel-") as tmp:
        copy = Path(tmp) / "src-copy"
        copy.mkdir()
        for name in SOURCES:
            src = source / name
            if src.is_dir():
                shutil.copytree(
                    src, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
                )
            else:
                shutil.copy2(src, copy / name)
        out = Path(tmp) / "wheel"
        cmd = [python, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"]
        _run([*cmd, "--no-deps", "-w", str(out), str(copy)])
        (wheel,) = out.glob("sysops_agent-*.whl")
        target = dist / wheel.name
        shutil.copy2(wheel, target)
    return target


def stage(wheel: Path, target: Path, python: str) -> None:
    cmd = [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--python-version",
        TARGET_PYTHON,
        "--implementation",
        "py",
        "--abi",
        "none",
        "--platform",
        "any",
        "--only-binary=:all:",
        str(wheel),
        *BACKPORTS,
    ]
    _run(cmd)


def _run(cmd: List[str]) -> None:
    """Run pip quietly; show its output only when it fails."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")


def compiled_files(target: Path) -> List[Path]:
    return [p for p in target.rglob("*") if p.is_file() and p.name.endswith(COMPILED_SUFFIXES)]


def strip(target: Path) -> None:
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(target / "bin", ignore_errors=True)  # console-script shims


def build(wheel: Path, out: Path, python: str = sys.executable) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sysops-pyz-") as tmp:
        target = Path(tmp) / "app"
        stage(wheel, target, python)
        bad = compiled_files(target)
        if bad:
            names = ", ".join(str(p.relative_to(target)) for p in bad)
            raise SystemExit(f"compiled extensions would land in the .pyz: {names}")
        strip(target)
        partial = out.with_name(out.name + ".partial")
        zipapp.create_archive(
            target, partial, interpreter="/usr/bin/env python3", main=MAIN, compressed=True
        )
        os.chmod(partial, 0o755)
        os.replace(partial, out)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dist", default=str(ROOT / "dist"), help="output directory")
    parser.add_argument("--wheel", help="use this project wheel instead of building one")
    parser.add_argument("--python", default=sys.executable, help="Python whose pip is used")
    args = parser.parse_args(argv)
    dist = Path(args.dist)
    if args.wheel:
        matches = glob.glob(args.wheel)
        if not matches:
            raise SystemExit(f"--wheel {args.wheel}: no such file")
        wheel = Path(sorted(matches)[-1])
    else:
        wheel = build_wheel(dist, args.python)
        print(f"{wheel} ({wheel.stat().st_size / 1024:.0f} KiB)")
    out = build(wheel, dist / "sysops-agent.pyz", args.python)
    print(f"{out} ({out.stat().st_size / 1024:.0f} KiB) from {wheel.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
