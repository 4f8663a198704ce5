"""deploy/install.sh and uninstall.sh against a scratch root (DESTDIR): never the machine's /etc.

The headline: install into the scratch root, start the installed single-file
agent as the (unprivileged) service user it created, make a threshold alert
fire from a fixture procfs and see it on stdout; SIGTERM, exit 0.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from tests.support.agentproc import AgentProcess, write_meminfo
from tests.support.distbuild import ROOT, built_pyz, system_python

PYENV = Path("~/.pyenv/versions").expanduser()

INSTALL = ROOT / "deploy" / "install.sh"
UNINSTALL = ROOT / "deploy" / "uninstall.sh"
SAMPLE_CONFIG = ROOT / "config" / "sysops-agent.toml"
UNIT = ROOT / "deploy" / "sysops-agent.service"

BIN = "usr/local/bin/sysops-agent"
CONFIG_DIR = "etc/sysops-agent"
CONFIG = "etc/sysops-agent/sysops-agent.toml"
DATA_DIR = "var/lib/sysops-agent"
UNIT_PATH = "etc/systemd/system/sysops-agent.service"

#: host files the installer must never touch when DESTDIR is set
HOST_FILES = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the installer sets owners: needs root"),
    pytest.mark.skipif(
        not (shutil.which("useradd") and shutil.which("groupadd")), reason="no useradd/groupadd"
    ),
]


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_pyz(tmp_path_factory)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A scratch root with a minimal passwd/group, traversable by unprivileged users.

    Not under pytest's tmp dir: that is mode 0700, and the headline test runs
    the agent as the service user.
    """
    root = Path(tempfile.mkdtemp(prefix="sysops-destdir-", dir="/tmp"))
    try:
        root.chmod(0o755)
        (root / "etc").mkdir(mode=0o755)
        (root / "etc" / "passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        )
        (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def digest(path: str) -> Optional[str]:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


@pytest.fixture(autouse=True)
def host_untouched() -> Iterator[None]:
    before = {p: digest(p) for p in HOST_FILES}
    existed = {p: os.path.exists(p) for p in ("/" + BIN, "/" + UNIT_PATH, "/" + CONFIG_DIR)}
    yield
    assert {p: digest(p) for p in HOST_FILES} == before, "host passwd/group files changed"
    assert {p: os.path.exists(p) for p in existed} == existed, "host paths changed"


def run_script(
    script: Path, scratch: Path, *args: str, tmp: Path, path: Optional[str] = None
) -> subprocess.CompletedProcess[str]:
    """Run under /bin/sh (dash on Debian: POSIX only). systemctl must never be called."""
    marker = tmp / "systemctl-called"
    fake = tmp / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {marker}\n')
    fake.chmod(0o755)
    env = dict(os.environ, SYSTEMCTL=str(fake))
    if path is not None:
        env["PATH"] = path
    proc = subprocess.run(
        ["/bin/sh", str(script), "--destdir", str(scratch), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert not marker.exists(), f"systemctl called: {marker.read_text()}"
    return proc


def install(
    scratch: Path, pyz: Path, tmp: Path, *args: str, path: Optional[str] = None
) -> subprocess.CompletedProcess[str]:
    proc = run_script(INSTALL, scratch, "--pyz", str(pyz), *args, tmp=tmp, path=path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def split_shebang(path: Path) -> Tuple[bytes, bytes]:
    first, rest = path.read_bytes().split(b"\n", 1)
    return first, rest


def account(scratch: Path, name: str, file: str) -> List[str]:
    for line in (scratch / "etc" / file).read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields
    raise AssertionError(f"{name} not in {file}")


def ids(scratch: Path) -> Tuple[int, int]:
    user = account(scratch, "sysops-agent", "passwd")
    group = account(scratch, "sysops-agent", "group")
    return int(user[2]), int(group[2])


def mode_owner(path: Path) -> Tuple[int, int, int]:
    st = path.lstat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def snapshot(root: Path) -> Dict[str, Tuple[int, int, int, Optional[str]]]:
    out: Dict[str, Tuple[int, int, int, Optional[str]]] = {}
    for path in sorted(root.rglob("*")):
        content = digest(str(path)) if path.is_file() else None
        out[str(path.relative_to(root))] = (*mode_owner(path), content)
    return out


def test_install_creates_user_directories_and_files(
    scratch: Path, pyz: Path, tmp_path: Path
) -> None:
    out = install(scratch, pyz, tmp_path).stdout
    assert "created user sysops-agent" in out

    user = account(scratch, "sysops-agent", "passwd")
    uid, gid = ids(scratch)
    assert 0 < uid < 1000 and uid != 65534, "a system uid"
    assert int(user[3]) == gid
    assert user[5] == "/var/lib/sysops-agent"
    assert user[6].endswith("/nologin")

    assert mode_owner(scratch / CONFIG_DIR) == (0o750, 0, gid)
    assert mode_owner(scratch / CONFIG) == (0o600, uid, gid)
    assert mode_owner(scratch / DATA_DIR) == (0o750, uid, gid)
    assert mode_owner(scratch / BIN) == (0o755, 0, 0)
    assert mode_owner(scratch / UNIT_PATH) == (0o644, 0, 0)
    # the archive as built, behind a #! line naming a Python >= 3.9 by its path
    shebang, archive = split_shebang(scratch / BIN)
    assert archive == split_shebang(pyz)[1]
    assert re.fullmatch(rb"#!/\S+/python3\.\d+", shebang), shebang
    assert (scratch / UNIT_PATH).read_text() == UNIT.read_text()

    # the sample config, with only data_dir pointed at the service's directory
    installed = (scratch / CONFIG).read_text().splitlines()
    sample = SAMPLE_CONFIG.read_text().splitlines()
    diff = [(a, b) for a, b in zip(sample, installed) if a != b]
    assert len(installed) == len(sample)
    assert len(diff) == 1 and diff[0][1] == 'data_dir = "/var/lib/sysops-agent"', diff
    assert not list((scratch / CONFIG_DIR).glob("*.new"))


def test_install_twice_gives_the_same_result(scratch: Path, pyz: Path, tmp_path: Path) -> None:
    install(scratch, pyz, tmp_path)
    first = snapshot(scratch)
    again = install(scratch, pyz, tmp_path).stdout
    assert "created" not in again
    assert "kept existing /etc/sysops-agent/sysops-agent.toml" in again
    assert snapshot(scratch) == first
    passwd = (scratch / "etc" / "passwd").read_text()
    assert len(re.findall(r"^sysops-agent:", passwd, re.M)) == 1


def test_existing_config_is_never_overwritten(scratch: Path, pyz: Path, tmp_path: Path) -> None:
    install(scratch, pyz, tmp_path)
    config = scratch / CONFIG
    edited = config.read_text() + '\n[alerting.slack]\nwebhook_url = "${SLACK_URL}"\n'
    config.write_text(edited)
    install(scratch, pyz, tmp_path)
    assert config.read_text() == edited


def test_uninstall_keeps_data_then_purge_removes_everything(
    scratch: Path, pyz: Path, tmp_path: Path
) -> None:
    install(scratch, pyz, tmp_path)
    (scratch / DATA_DIR / "metrics.db").write_bytes(b"history")
    proc = run_script(UNINSTALL, scratch, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (scratch / BIN).exists()
    assert not (scratch / UNIT_PATH).exists()
    assert (scratch / CONFIG).exists()
    assert (scratch / DATA_DIR / "metrics.db").exists()
    account(scratch, "sysops-agent", "passwd")

    proc = run_script(UNINSTALL, scratch, "--purge", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (scratch / CONFIG_DIR).exists()
    assert not (scratch / DATA_DIR).exists()
    assert "sysops-agent" not in (scratch / "etc" / "passwd").read_text()
    assert "sysops-agent" not in (scratch / "etc" / "group").read_text()
    assert "nobody" in (scratch / "etc" / "passwd").read_text()

    proc = run_script(UNINSTALL, scratch, "--purge", tmp=tmp_path)  # nothing left: still fine
    assert proc.returncode == 0, proc.stderr


def test_install_names_what_is_missing(scratch: Path, tmp_path: Path) -> None:
    proc = run_script(INSTALL, scratch, "--pyz", str(tmp_path / "nope.pyz"), tmp=tmp_path)
    assert proc.returncode == 1
    assert "nope.pyz not found" in proc.stderr and "make dist" in proc.stderr
    proc = run_script(INSTALL, scratch, "--bogus", tmp=tmp_path)
    assert proc.returncode == 1 and "unknown argument: --bogus" in proc.stderr
    assert "sysops-agent" not in (scratch / "etc" / "passwd").read_text()


# ------------------------------------------------------------ the interpreter


def pyenv_python(minor: str) -> Optional[Path]:
    found = sorted(PYENV.glob(f"{minor}.*/bin/python{minor}"))
    return found[-1] if found else None


def link(directory: Path, name: str, target: Path) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).symlink_to(target)


def fake_python(directory: Path, name: str, script: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text("#!/bin/sh\n" + script + "\n")
    (directory / name).chmod(0o755)


def tools_without_python(tmp: Path) -> Path:
    """Every command of /usr/bin and /usr/sbin but the Pythons: a host without a usable one."""
    farm = tmp / "tools"
    farm.mkdir()
    for directory in (Path("/usr/sbin"), Path("/usr/bin")):
        for tool in directory.iterdir():
            if not tool.name.startswith("python") and not (farm / tool.name).exists():
                (farm / tool.name).symlink_to(tool)
    return farm


def test_the_newest_python_39_or_later_on_path_runs_the_installed_agent(
    scratch: Path, pyz: Path, tmp_path: Path
) -> None:
    py39, py313 = pyenv_python("3.9"), pyenv_python("3.13")
    if py39 is None or py313 is None:
        pytest.skip("needs pyenv's Python 3.9 and 3.13")
    bin_ = tmp_path / "bin"
    link(bin_, "python3.9", py39)
    link(bin_, "python3.13", py313)
    fake_python(bin_, "python3.14", "exit 1")  # broken: passed over
    fake_python(bin_, "python3.8", "echo /usr/bin/python3.8")  # too old, whatever it says
    install(scratch, pyz, tmp_path, path=f"{bin_}:{tools_without_python(tmp_path)}")
    assert split_shebang(scratch / BIN)[0] == f"#!{bin_}/python3.13".encode()
    # through the kernel's reading of that line, as systemd starts it
    proc = subprocess.run(
        [str(scratch / BIN), "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("sysops-agent ")


def test_a_pyenv_shim_is_resolved_to_its_interpreter(
    scratch: Path, pyz: Path, tmp_path: Path
) -> None:
    """A wrapper script (what pyenv puts on PATH) is not named: the interpreter it runs is."""
    py310 = pyenv_python("3.10")
    if py310 is None:
        pytest.skip("needs pyenv's Python 3.10")
    bin_ = tmp_path / "bin"
    fake_python(bin_, "python3.10", f'exec {py310} "$@"')
    install(scratch, pyz, tmp_path, path=f"{bin_}:{tools_without_python(tmp_path)}")
    assert split_shebang(scratch / BIN)[0] == f"#!{py310}".encode()


def test_without_a_python_39_the_installer_says_so_and_installs_nothing(
    scratch: Path, pyz: Path, tmp_path: Path
) -> None:
    bin_ = tmp_path / "bin"
    py36 = pyenv_python("3.6")
    if py36 is not None:  # as on RHEL 8 and CentOS 7
        link(bin_, "python3", py36)
        link(bin_, "python3.6", py36)
    else:
        fake_python(bin_, "python3", "echo 3.6")
    proc = run_script(
        INSTALL,
        scratch,
        "--pyz",
        str(pyz),
        tmp=tmp_path,
        path=f"{bin_}:{tools_without_python(tmp_path)}",
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        "install.sh: no Python >= 3.9 on PATH (python3 is 3.6): sysops-agent needs"
        " Python >= 3.9; install one (on RHEL 8: dnf install python39) or pass --python FILE\n"
    )
    assert "sysops-agent" not in (scratch / "etc" / "passwd").read_text()
    assert not (scratch / BIN).exists()


def test_python_option(scratch: Path, pyz: Path, tmp_path: Path) -> None:
    old = pyenv_python("3.8") or pyenv_python("3.6")
    if old is not None:
        proc = run_script(INSTALL, scratch, "--pyz", str(pyz), "--python", str(old), tmp=tmp_path)
        assert proc.returncode == 1
        assert f"--python {old}: not a Python >= 3.9" in proc.stderr
        assert not (scratch / BIN).exists()
    python = system_python()
    if python is None:
        pytest.skip("no system /usr/bin/python3 >= 3.9")
    install(scratch, pyz, tmp_path, "--python", python)
    assert split_shebang(scratch / BIN)[0] == f"#!{python}".encode()


# --------------------------------------------------------------- the headline


def set_key(text: str, section: str, key: str, value: str) -> str:
    """Set ``key = value`` inside ``[section]`` of a TOML text (adding either if absent)."""
    lines = text.splitlines()
    try:
        start = lines.index(f"[{section}]")
    except ValueError:
        return text.rstrip("\n") + f"\n\n[{section}]\n{key} = {value}\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    for i in range(start + 1, end):
        if re.match(rf"\s*{re.escape(key)}\s*=", lines[i]):
            lines[i] = f"{key} = {value}"
            break
    else:
        lines.insert(start + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def fixture_procfs(root: Path) -> Path:
    """Copies of the live /proc files the collectors read, readable by everyone."""
    proc = root / "proc"
    for name in ("stat", "loadavg", "uptime", "diskstats", "mounts", "net/dev", "sys/fs/file-nr"):
        target = proc / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path("/proc", name).read_bytes())
    write_meminfo(proc, 20.0)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return proc


def status_field(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def test_install_start_alert_as_unprivileged_service(
    scratch: Path, pyz: Path, tmp_path: Path
) -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    python = system_python()
    if python is None:
        pytest.skip("no system /usr/bin/python3 >= 3.9 that an unprivileged user can run")
    # the interpreter the service user can reach (pyenv's, under /root, it cannot)
    install(scratch, pyz, tmp_path, "--python", python)
    assert split_shebang(scratch / BIN)[0] == f"#!{python}".encode()
    uid, gid = ids(scratch)
    proc = fixture_procfs(scratch / "fixture")

    # The installed config, pointed at the scratch root and the fixture procfs, fast.
    config = scratch / CONFIG
    text = config.read_text()
    text = set_key(text, "agent", "hostname", '"scratch-host"')
    text = set_key(text, "agent", "data_dir", f'"{scratch / DATA_DIR}"')
    text = set_key(text, "agent", "proc_root", f'"{proc}"')
    text = set_key(text, "collector.memory", "interval_secs", "1")
    text = set_key(text, "analyzer", "interval_secs", "1")
    text = set_key(text, "alerting", "group_window_secs", "0")
    config.write_text(text)
    assert mode_owner(config) == (0o600, uid, gid)

    # What systemd does: the service user, no supplementary groups, no capabilities.
    env = {"PATH": f"{Path(python).parent}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    command = [
        setpriv,
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        str(scratch / BIN),  # through its own #!/usr/bin/env python3 line
        "run",
        "--config",
        str(config),
    ]
    agent = AgentProcess(command=command, env=env, cwd=scratch / DATA_DIR)
    try:
        agent.wait_stderr("collectors: ")
        pid = agent.proc.pid
        assert status_field(pid, "Uid").split()[:2] == [str(uid), str(uid)]
        assert int(status_field(pid, "CapEff"), 16) == 0

        write_meminfo(proc, 95.0)  # above the sample config's critical level (90)
        line = agent.wait_line("memory_usage_percent", "[CRITICAL]", timeout=30)
        assert "scratch-host" in line and "95" in line
        assert agent.proc.poll() is None
    finally:
        code = agent.stop(timeout=25)
    assert code == 0, "".join(agent.stderr)
    assert any("sysops-agent stopped" in line for line in agent.stderr)
    # whatever it wrote went to the data dir, as the service user
    for path in (scratch / DATA_DIR).rglob("*"):
        assert path.stat().st_uid == uid, path
