"""Build ``sysops-agent.pyz``: one file that runs with nothing but a system Python >= 3.9.

Usage: ``python deploy/build_pyz.py [--dist DIR]`` (what ``make dist`` runs): builds the
wheel ``DIR/sysops_agent-<version>-py3-none-any.whl`` from a clean copy of the
sources (so stale files in ``build/`` can never land in it), then
``DIR/sysops-agent.pyz``. ``--wheel FILE`` skips the wheel build.

Reproducible: the same commit gives the same bytes, run after run.

* The vendored packages are exactly those pinned, with their hashes, in
  ``requirements/runtime.lock`` (resolved on Python 3.9 by ``make lock``):
  ``pip download --require-hashes --no-deps`` *as if for Python 3.9 on any
  platform* (``--python-version 3.9 --platform any --only-binary=:all:``), so
  only pure-Python ``py3-none-any`` wheels can come, and the build fails if the
  lock misses one of the wheel's own dependencies. Each wheel is unpacked as it
  is (a pure-Python wheel's install is its unpacking): no pip-written
  ``RECORD``, ``INSTALLER`` or script shims with this machine's paths in them.
* The wheel is built with ``--no-build-isolation`` by the setuptools and wheel
  of the running environment (``requirements/build.lock`` under ``make dist``),
  from a copy whose files are all mode 0644 (0755 for directories), under
  umask 022, with ``SOURCE_DATE_EPOCH`` set (the ``wheel`` package dates every
  entry with it and sorts them).
* The archive is written entry by entry: sorted names, every timestamp
  ``SOURCE_DATE_EPOCH`` (the last commit's time, ``git log -1 --format=%ct``,
  unless set), every mode 0644, deflate at level 9, no directory entries.
  What is left to the machine is zlib: another zlib (zlib-ng, say) may
  compress to other bytes, with the same content.

``__main__.py`` is ``deploy/pyz_main.py``: it refuses Python < 3.9 with a clear
message before importing anything of the package.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
#: the oldest Python we support: the lock is resolved on it, with every backport newer ones skip
TARGET_PYTHON = "3.9"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"
PYZ_MAIN = ROOT / "deploy" / "pyz_main.py"
SHEBANG = b"#!/usr/bin/env python3\n"
#: files that would tie the archive to one interpreter or platform
COMPILED_SUFFIXES = (".so", ".pyd", ".dll", ".dylib")
#: the earliest time a zip entry can carry
ZIP_EPOCH = 315532800  # 1980-01-01T00:00:00Z
COMPRESSLEVEL = 9

#: what a wheel is built from (pyproject.toml names README.md as the long description)
SOURCES = ("pyproject.toml", "README.md", "src")


def source_date_epoch(source: Path = ROOT) -> int:
    """``SOURCE_DATE_EPOCH`` if set, else the last commit's time, else 1980-01-01."""
    env = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if env:
        return int(env)
    try:
        proc = subprocess.run(
            ["git", "-C", str(source), "log", "-1", "--format=%ct"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    except OSError:
        return ZIP_EPOCH
    out = proc.stdout.strip()
    return int(out) if proc.returncode == 0 and out.isdigit() else ZIP_EPOCH


def build_env(epoch: int) -> Dict[str, str]:
    return dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), PYTHONHASHSEED="0")


def normalise_modes(tree: Path) -> None:
    """0755 directories, 0644 files: what a checkout's umask left must not reach the wheel."""
    tree.chmod(0o755)
    for path in tree.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def build_wheel(
    dist: Path, python: str = sys.executable, source: Path = ROOT, epoch: Optional[int] = None
) -> Path:
    """``pip wheel`` of a fresh copy of the project; returns the wheel's path."""
    if epoch is None:
        epoch = source_date_epoch(source)
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
        normalise_modes(copy)
        out = Path(tmp) / "wheel"
        cmd = [python, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"]
        cmd += ["--no-deps", "--no-build-isolation", "-w", str(out), str(copy)]
        umask = os.umask(0o022)  # setuptools' copies in build/ are made with it, modes go in the wheel
        try:
            _run(cmd, env=build_env(epoch))
        finally:
            os.umask(umask)
        (wheel,) = out.glob("sysops_agent-*.whl")
        target = dist / wheel.name
        shutil.copyfile(wheel, target)
    return target


def download(lock: Path, into: Path, python: str) -> List[Path]:
    """The pinned wheels of ``lock``, hashes checked, as pure-Python wheels for 3.9."""
    cmd = [python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    cmd += ["--no-deps", "--require-hashes", "--only-binary=:all:", "-d", str(into)]
    cmd += ["--python-version", TARGET_PYTHON, "--implementation", "py", "--abi", "none"]
    cmd += ["--platform", "any", "-r", str(lock)]
    _run(cmd)
    return sorted(into.glob("*.whl"))


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_names(lock: Path) -> List[str]:
    names = []
    for line in lock.read_text().splitlines():
        m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if m:
            names.append(normalise(m.group(1)))
    return names


def wheel_requirements(wheel: Path) -> List[str]:
    """The names in the wheel's ``Requires-Dist`` lines, those of extras left out."""
    with zipfile.ZipFile(wheel) as zf:
        (meta,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        text = zf.read(meta).decode("utf-8")
    names = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            m = re.match(r"Requires-Dist:\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
            if m:
                names.append(normalise(m.group(1)))
    return names


def unpack(wheel: Path, target: Path) -> None:
    """Install a pure-Python wheel into ``target``: its files, as they are in it."""
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            parts = name.split("/")
            if parts[0].endswith(".data"):
                if len(parts) > 2 and parts[1] in ("purelib", "platlib"):
                    dest = target.joinpath(*parts[2:])
                else:
                    continue  # scripts, headers, data: not importable, not wanted
            else:
                dest = target.joinpath(*parts)
            if name.endswith("/"):
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(name))


def stage(wheel: Path, target: Path, python: str, lock: Path = RUNTIME_LOCK) -> None:
    missing = sorted(set(wheel_requirements(wheel)) - set(locked_names(lock)))
    if missing:
        raise SystemExit(
            f"{lock.name} lacks {', '.join(missing)} (a dependency of {wheel.name}): "
            "run 'make lock'"
        )
    with tempfile.TemporaryDirectory(prefix="sysops-wheels-") as tmp:
        for dep in download(lock, Path(tmp), python):
            unpack(dep, target)
    unpack(wheel, target)
    shutil.copyfile(PYZ_MAIN, target / "__main__.py")


def _run(cmd: List[str], env: Optional[Dict[str, str]] = None) -> None:
    """Run pip quietly; show its output only when it fails."""
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")


def compiled_files(target: Path) -> List[Path]:
    return [p for p in target.rglob("*") if p.is_file() and p.name.endswith(COMPILED_SUFFIXES)]


def strip(target: Path) -> None:
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    for pyc in list(target.rglob("*.pyc")):
        pyc.unlink()


def write_archive(target: Path, out: Path, epoch: int) -> None:
    """``target``'s files as a zip behind the shebang, the same bytes for the same files.

    The zip is made on its own, its offsets counted from its first byte, then put
    behind the ``#!`` line: a prefix any zip reader skips whatever its length, so
    ``deploy/install.sh`` can name another interpreter in it (offsets counted from
    the file's start, as :mod:`zipapp` writes them, break when the line grows).
    """
    date_time = time.gmtime(max(epoch, ZIP_EPOCH))[:6]
    files = sorted((p.relative_to(target).as_posix(), p) for p in target.rglob("*") if p.is_file())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time)
            info.create_system = 3  # Unix, so that the mode below is read
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes(), compresslevel=COMPRESSLEVEL)
    with open(out, "wb") as f:
        f.write(SHEBANG + buf.getvalue())


def build(
    wheel: Path, out: Path, python: str = sys.executable, epoch: Optional[int] = None
) -> Path:
    if epoch is None:
        epoch = source_date_epoch()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sysops-pyz-") as tmp:
        target = Path(tmp) / "app"
        target.mkdir()
        stage(wheel, target, python)
        bad = compiled_files(target)
        if bad:
            names = ", ".join(str(p.relative_to(target)) for p in bad)
            raise SystemExit(f"compiled extensions would land in the .pyz: {names}")
        strip(target)
        partial = out.with_name(out.name + ".partial")
        write_archive(target, partial, epoch)
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
    epoch = source_date_epoch()
    if args.wheel:
        matches = glob.glob(args.wheel)
        if not matches:
            raise SystemExit(f"--wheel {args.wheel}: no such file")
        wheel = Path(sorted(matches)[-1])
    else:
        wheel = build_wheel(dist, args.python, epoch=epoch)
        print(f"{wheel} ({wheel.stat().st_size / 1024:.0f} KiB)")
    out = build(wheel, dist / "sysops-agent.pyz", args.python, epoch)
    print(f"{out} ({out.stat().st_size / 1024:.0f} KiB) from {wheel.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
