"""``make dist``: the wheel and the single-file ``sysops-agent.pyz`` on a bare Python >= 3.9.

Also: the archive refuses an older Python in words, and two builds of the same
commit are the same bytes.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional, Tuple

import pytest

from sysops_agent import __version__
from tests.support.distbuild import (
    BUILD_SCRIPT,
    ROOT,
    built_pyz,
    old_pythons,
    python39,
    system_python,
)

PYZ_MAIN = ROOT / "deploy" / "pyz_main.py"
BUILD_PACKAGES = ROOT / "deploy" / "build_packages.py"
LOCKS = sorted((ROOT / "requirements").glob("*.lock"))

#: pure-Python runtime dependencies (and the backports 3.9/3.10 need) vendored in the archive
VENDORED = [
    "sysops_agent",
    "aiosmtplib",
    "tomli",
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
        "import aiosmtplib; "
        "import sysops_agent.config, sysops_agent.daemon, sysops_agent.httpclient; "
        "print(aiosmtplib.__file__)"
    )
    imported = subprocess.run(
        [python, "-I", "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip().startswith(str(pyz))


# ------------------------------------------------- the refusal of an old Python


def load_pyz_main() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pyz_main", PYZ_MAIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_archive_main_is_deploy_pyz_main(pyz: Path) -> None:
    with zipfile.ZipFile(pyz) as zf:
        assert zf.read("__main__.py") == PYZ_MAIN.read_bytes()


def uses_3x_only_syntax(source: str) -> List[str]:
    """What in ``source`` an old Python (2.7, 3.4-3.8) cannot parse or run."""
    try:
        tree = ast.parse(source, feature_version=(3, 4))  # f-strings, variable annotations...
    except SyntaxError as e:
        return [f"SyntaxError for Python 3.4: {e.msg} (line {e.lineno})"]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            if node.returns is not None or any(
                a.annotation is not None for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]
            ):
                found.append(f"annotation in {node.name}()")
            if args.kwonlyargs or args.posonlyargs:
                found.append(f"keyword-only or positional-only arguments in {node.name}()")
        if isinstance(node, ast.AsyncFunctionDef):
            found.append(f"async def {node.name}")
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            found.append("a __future__ import")
        if isinstance(node, ast.JoinedStr):
            found.append("an f-string")
    return found


def launcher_source() -> str:
    """/usr/bin/sysops-agent of the .deb/.rpm: pyz_main.py with its own last lines
    (deploy/build_packages.py, which imports nothing but the standard library)."""
    spec = importlib.util.spec_from_file_location("build_packages", BUILD_PACKAGES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = module.launcher_source()
    assert isinstance(source, str)
    return source


@pytest.mark.parametrize("name", ["pyz_main.py", "the packages' launcher"])
def test_the_archive_main_parses_on_old_pythons(name: str) -> None:
    """pyz_main.py, and the launcher built from it (tests/integration/test_packages.py
    runs the installed one on the old Pythons)."""
    if name == "pyz_main.py":
        source = PYZ_MAIN.read_text(encoding="utf-8")
    else:
        source = launcher_source()
        assert source.startswith("#!/usr/bin/python3\n# -*- coding: utf-8 -*-\n")
        assert "sys.path[0] = library(script)" in source
    compile(source, "__main__.py", "exec", dont_inherit=True)
    assert uses_3x_only_syntax(source) == []
    # ...and the check does see what 3.6 or 2.7 choke on
    assert uses_3x_only_syntax("x = f'{1}'\n")
    assert uses_3x_only_syntax("def f(a: int) -> int:\n    return a\n")
    assert uses_3x_only_syntax("from __future__ import annotations\n")
    assert uses_3x_only_syntax("def f(*, a):\n    return a\n")


RHEL8 = {"ID": "rhel", "ID_LIKE": "fedora", "VERSION_ID": "8.9"}
ROCKY8 = {"ID": "rocky", "ID_LIKE": "rhel centos fedora", "VERSION_ID": "8.10"}
CENTOS7 = {"ID": "centos", "ID_LIKE": "rhel fedora", "VERSION_ID": "7"}
FOCAL = {"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "20.04"}
BUSTER = {"ID": "debian", "VERSION_ID": "10"}


@pytest.mark.parametrize(
    ("version", "release", "message"),
    [
        (
            (3, 6, 8, "final", 0),
            RHEL8,
            "sysops-agent needs Python \u2265 3.9; this is 3.6 \u2014 on RHEL 8: dnf install python39",
        ),
        (
            (3, 6, 8),
            ROCKY8,
            "sysops-agent needs Python \u2265 3.9; this is 3.6 \u2014 on RHEL 8: dnf install python39",
        ),
        (
            (3, 6, 8),
            CENTOS7,
            "sysops-agent needs Python \u2265 3.9; this is 3.6 \u2014 "
            "on RHEL/CentOS 7 no package has one (rh-python38 is 3.8)",
        ),
        (
            (3, 8, 10),
            FOCAL,
            "sysops-agent needs Python \u2265 3.9; this is 3.8 \u2014 "
            "on Ubuntu 20.04: apt install python3.9",
        ),
        ((3, 7, 3), BUSTER, "sysops-agent needs Python \u2265 3.9; this is 3.7"),
        ((2, 7, 18), {}, "sysops-agent needs Python \u2265 3.9; this is 2.7"),
        ((3, 9, 0), RHEL8, None),
        ((3, 13, 0), {}, None),
        ((4, 0), {}, None),
    ],
)
def test_refusal(version: Tuple[int, ...], release: Dict[str, str], message: Optional[str]) -> None:
    assert load_pyz_main().refusal(version, release) == message


def test_os_release_is_read_and_a_missing_one_is_no_error(tmp_path: Path) -> None:
    main = load_pyz_main()
    path = tmp_path / "os-release"
    path.write_text(
        'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="8.10"\n'
    )
    assert main.os_release(str(path)) == {
        "NAME": "Rocky Linux",
        "ID": "rocky",
        "ID_LIKE": "rhel centos fedora",
        "VERSION_ID": "8.10",
    }
    assert main.os_release(str(tmp_path / "absent")) == {}


def test_the_message_falls_back_to_ascii_where_the_terminal_has_no_signs() -> None:
    main = load_pyz_main()
    message = main.refusal((3, 6, 8), RHEL8)
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    ascii_ = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    assert main.encode_for(message, utf8) == message.encode("utf-8")
    assert main.encode_for(message, ascii_) == (
        b"sysops-agent needs Python >= 3.9; this is 3.6 - on RHEL 8: dnf install python39"
    )


@pytest.mark.skipif(not old_pythons(), reason="no Python older than 3.9 installed (pyenv)")
@pytest.mark.parametrize("python", old_pythons())
def test_an_old_python_is_refused_in_words(python: str, pyz: Path, tmp_path: Path) -> None:
    """The real archive under the real old interpreter (as ``python3`` is on RHEL 8: 3.6)."""
    main = load_pyz_main()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run(
        [python, "-s", str(pyz), "run"],
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
        env=dict(env, PYTHONIOENCODING="utf-8"),  # what a UTF-8 terminal gives
    )
    version = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    expected = main.refusal(tuple(int(x) for x in version.split(".")))
    assert expected is not None and f"this is {version}" in expected
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert proc.stderr.decode("utf-8") == expected + "\n"


# ----------------------------------------------------------------- reproducible


def commit_time() -> int:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%ct"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out)


def test_archive_entries_are_sorted_dated_by_the_commit_with_fixed_modes(pyz: Path) -> None:
    with zipfile.ZipFile(pyz) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert not [n for n in names if n.endswith("/")], "no directory entries"
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or commit_time())
    stamp = time.gmtime(epoch // 2 * 2)[:6]  # zip times have a 2 s resolution
    assert {i.date_time for i in infos} == {stamp}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}


def test_every_lock_pins_each_package_with_hashes() -> None:
    """``make lock``'s output: ``name==version`` and at least one sha256 for each."""
    assert {p.name for p in LOCKS} == {"runtime.lock", "build.lock", "dev.lock"}
    for lock in LOCKS:
        blocks = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text())
        pins = [b for b in blocks if re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*==", b)]
        assert pins, lock
        for block in pins:
            assert "--hash=sha256:" in block, f"{lock.name}: {block.splitlines()[0]}"
        unpinned = [b.splitlines()[0] for b in blocks if re.match(r"[A-Za-z0-9]", b)]
        assert len(unpinned) == len(pins), f"{lock.name}: unpinned {unpinned}"


def test_the_runtime_lock_covers_the_wheels_dependencies(pyz: Path) -> None:
    sys.path.insert(0, str(BUILD_SCRIPT.parent))
    try:
        import build_pyz
    finally:
        sys.path.remove(str(BUILD_SCRIPT.parent))
    (wheel,) = pyz.parent.glob("sysops_agent-*.whl")
    needed = set(build_pyz.wheel_requirements(wheel))
    assert {"aiosmtplib", "tomli"} <= needed
    assert not {"httpx", "prometheus-client"} & needed
    assert needed <= set(build_pyz.locked_names(ROOT / "requirements" / "runtime.lock"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    """``make dist`` twice: the same .pyz and wheel, whatever the umask, time zone or time."""
    outputs = []
    for n, (umask, tz) in enumerate([("022", "UTC"), ("002", "Asia/Tokyo")]):
        out = tmp_path / f"build{n}"
        umasked = ["sh", "-c", f'umask {umask} && exec "$0" "$@"']
        proc = subprocess.run(
            [*umasked, sys.executable, str(BUILD_SCRIPT), "--dist", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, TZ=tz),
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outputs.append(out)
        time.sleep(1.1)  # a timestamp taken from the clock would differ
    first, second = outputs
    (wheel,) = first.glob("*.whl")
    assert sha256(first / "sysops-agent.pyz") == sha256(second / "sysops-agent.pyz")
    assert sha256(wheel) == sha256(second / wheel.name)


@pytest.mark.parametrize("shebang", [b"#!/p", b"#!/opt/rh/python-3.11/root/usr/bin/python3.11"])
def test_the_first_line_can_name_any_interpreter(pyz: Path, tmp_path: Path, shebang: bytes) -> None:
    """What deploy/install.sh does: a shorter or a longer #! line, the archive still runs."""
    copy = tmp_path / "sysops-agent"
    copy.write_bytes(shebang + b"\n" + pyz.read_bytes().split(b"\n", 1)[1])
    proc = run_pyz(sys.executable, copy, "--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"sysops-agent {__version__}"
