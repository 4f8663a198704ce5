"""Paths the agent writes (issue 18 item 4): checked by ``check-config`` and at start-up
(the key and a fix, exit 2, never a traceback), a PID file that never clobbers another
file, and files created 0600 with ``O_NOFOLLOW`` whatever the umask."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, List

import pytest

from sysops_agent.config import AgentConfig
from sysops_agent.pidfile import PidFile, PidFileError
from tests.support.agentproc import agent_config, minimal_procfs
from tests.support.logstate import restore_logging

NOBODY = 65534


def agent(*args: str, user: bool = False) -> subprocess.CompletedProcess[str]:
    prefix: List[str] = []
    if user and os.geteuid() == 0:  # as an unprivileged user, like the service's
        prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "sysops_agent", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def config_with(tmp: Path, agent_lines: str) -> Path:
    """The test agent's config, with ``agent_lines`` replacing its pid_file line."""
    path = agent_config(tmp, minimal_procfs(tmp))
    lines = [
        agent_lines if line.startswith("pid_file") else line
        for line in path.read_text().splitlines()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory every user can read (pytest's tmp_path is 0700 under root's)."""
    d = Path(tempfile.mkdtemp(prefix="sysops-paths-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


BAD_PATHS = [
    ("nul_pid_file", 'pid_file = "{tmp}/agent\\u0000.pid"', "agent.pid_file", "NUL byte"),
    ("nul_log_file", 'pid_file = ""\nlog_file = "{tmp}/a\\u0000.log"', "agent.log_file", "NUL"),
    ("dir_pid_file", 'pid_file = "{tmp}"', "agent.pid_file", "is a directory"),
    ("dir_log_file", 'pid_file = ""\nlog_file = "{tmp}"', "agent.log_file", "is a directory"),
    (
        "not_a_pid",
        'pid_file = "{tmp}/important.conf"',
        "agent.pid_file",
        "does not hold a PID",
    ),
]


@pytest.mark.parametrize(("case", "line", "key", "why"), BAD_PATHS, ids=[c[0] for c in BAD_PATHS])
def test_bad_paths_are_reported_by_check_config_and_stop_the_start_without_traceback(
    tmp_path: Path, case: str, line: str, key: str, why: str
) -> None:
    (tmp_path / "important.conf").write_text("keep = me\n")
    config = config_with(tmp_path, line.format(tmp=tmp_path))
    checked = agent("check-config", str(config))
    assert checked.returncode == 1, checked.stdout
    assert f"{key}: " in checked.stdout and why in checked.stdout
    started = agent("run", "--config", str(config))
    assert started.returncode == 2, started.stderr
    assert "Traceback" not in started.stderr
    assert f"{key}: " in started.stderr and why in started.stderr
    assert (tmp_path / "important.conf").read_text() == "keep = me\n"


def test_pid_file_under_run_for_an_unprivileged_user_names_the_key_and_the_fix(
    shared_tmp: Path,
) -> None:
    if os.geteuid() != 0 and os.access("/run", os.W_OK):
        pytest.skip("this user can write /run")
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to drop root")
        probe = agent("--version", user=True)
        if probe.returncode != 0:  # e.g. a Python under /root that nobody may load
            pytest.skip(f"this Python cannot run as uid {NOBODY}: {probe.stderr.strip()[:100]}")
    config = config_with(shared_tmp, 'pid_file = "/run/sysops-agent-test/sysops-agent.pid"')
    config.chmod(0o644)
    started = agent("run", "--config", str(config), user=True)
    assert started.returncode == 2, started.stderr
    assert "Traceback" not in started.stderr
    assert "agent.pid_file" in started.stderr
    assert "Create /run/sysops-agent-test owned by sysops-agent" in started.stderr
    assert "RuntimeDirectory=" in started.stderr
    checked = agent("check-config", str(config), user=True)
    assert "agent.pid_file" in checked.stdout and "RuntimeDirectory=" in checked.stdout


def test_path_problems_cover_data_dir_and_symlinks(tmp_path: Path) -> None:
    from sysops_agent.config_checks import path_problems

    (tmp_path / "file").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    problems = path_problems(
        AgentConfig(
            data_dir=str(tmp_path / "file"),
            log_file=str(tmp_path / "link"),
            pid_file=str(tmp_path / "file" / "x.pid"),
        )
    )
    text = "\n".join(str(p) for p in problems)
    assert f"agent.data_dir: {tmp_path / 'file'} exists and is not a directory" in text
    assert "agent.log_file: " in text and "is a symlink" in text
    assert f"agent.pid_file: {tmp_path / 'file'} is not a directory" in text
    assert path_problems(AgentConfig(data_dir=str(tmp_path / "new" / "dir"), log_file="")) == []


def test_the_pid_file_never_replaces_or_deletes_a_file_that_holds_no_pid(tmp_path: Path) -> None:
    important = tmp_path / "important.conf"
    important.write_text("setting = 1\n")
    with pytest.raises(PidFileError, match="does not hold a PID"):
        PidFile(important).acquire()
    PidFile(important).release()
    assert important.read_text() == "setting = 1\n"


def test_the_pid_file_refuses_a_directory_and_a_symlink(tmp_path: Path) -> None:
    with pytest.raises(PidFileError, match="is a directory"):
        PidFile(tmp_path).acquire()
    target = tmp_path / "target"
    target.write_text("1\n")
    (tmp_path / "link.pid").symlink_to(target)
    with pytest.raises(PidFileError, match="symlink"):
        PidFile(tmp_path / "link.pid").acquire()
    assert target.read_text() == "1\n"


def test_a_stale_or_empty_pid_file_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "agent.pid"
    path.write_text("")
    PidFile(path).acquire()
    assert path.read_text() == f"{os.getpid()}\n"


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_the_pid_file_and_state_files_are_0600_under_umask_022(tmp_path: Path) -> None:
    from sysops_agent.logwatch.state import save_state

    pid = tmp_path / "agent.pid"
    PidFile(pid).acquire()
    assert mode(pid) == 0o600
    for name in ("files.state", "kmsg.state"):
        assert save_state(str(tmp_path / name), {"a": 1})
        assert mode(tmp_path / name) == 0o600


@pytest.mark.usefixtures("umask_022")
def test_an_existing_state_file_with_a_loose_mode_is_replaced_by_a_0600_one(
    tmp_path: Path,
) -> None:
    from sysops_agent.logwatch.state import save_state

    path = tmp_path / "files.state"
    path.write_text("{}")
    path.chmod(0o666)
    assert save_state(str(path), {"a": 1})
    assert mode(path) == 0o600


def test_the_temporary_file_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    from sysops_agent.fsutil import write_atomic

    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / f".files.state.{os.getpid()}").symlink_to(victim)
    write_atomic(str(tmp_path / "files.state"), "new")
    assert victim.read_text() == "precious\n"
    assert (tmp_path / "files.state").read_text() == "new"
    assert not (tmp_path / f".files.state.{os.getpid()}").exists()


@pytest.mark.usefixtures("umask_022")
def test_the_log_file_is_0600_and_never_follows_a_symlink(tmp_path: Path) -> None:
    import logging

    from sysops_agent.agent_logging import setup_logging

    log_file = tmp_path / "agent.log"
    with restore_logging():
        setup_logging("info", str(log_file))
        logging.getLogger("sysops_agent.test").warning("hello")
        assert mode(log_file) == 0o600 and "hello" in log_file.read_text()
        log_file.unlink()
        victim = tmp_path / "victim"
        victim.write_text("precious\n")
        log_file.symlink_to(victim)
        setup_logging("info", str(log_file))
        logging.getLogger("sysops_agent.test").warning("hello")
        assert victim.read_text() == "precious\n"


@pytest.mark.usefixtures("umask_022")
def test_an_existing_log_file_with_a_loose_mode_is_tightened(tmp_path: Path) -> None:
    from sysops_agent.agent_logging import setup_logging

    log_file = tmp_path / "agent.log"
    log_file.write_text("")
    log_file.chmod(0o644)
    with restore_logging():
        setup_logging("info", str(log_file))
        assert mode(log_file) == 0o600


def test_a_data_dir_that_is_a_file_is_a_warning_and_the_agent_runs(tmp_path: Path) -> None:
    from tests.support.agentproc import AgentProcess

    (tmp_path / "data").write_text("not a directory")  # agent_config's data_dir
    config = agent_config(tmp_path, minimal_procfs(tmp_path))
    agent = AgentProcess(["run", "--config", str(config)])
    try:
        line = agent.wait_stderr("agent.data_dir: ")
        assert "exists and is not a directory" in line
        agent.wait_stderr("sysops-agent starting")
    finally:
        assert agent.stop() == 0
