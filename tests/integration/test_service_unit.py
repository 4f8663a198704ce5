"""The systemd unit (deploy/sysops-agent.service): hardening settings and `systemd-analyze verify`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from tests.support.paths import ROOT

UNIT = ROOT / "deploy" / "sysops-agent.service"
INSTALL_SH = ROOT / "deploy" / "install.sh"


def parse_unit(text: str) -> Dict[str, Dict[str, List[str]]]:
    """section -> key -> every value assigned (systemd allows repeating keys)."""
    sections: Dict[str, Dict[str, List[str]]] = {}
    current: Dict[str, List[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def service() -> Dict[str, List[str]]:
    return parse_unit(UNIT.read_text())["Service"]


def one(service: Dict[str, List[str]], key: str) -> str:
    values = service.get(key)
    assert values is not None, f"{key}= missing from the unit"
    assert len(values) == 1, f"{key}= set {len(values)} times: {values}"
    return values[0]


def test_runs_as_dedicated_user_with_exactly_two_capabilities(
    service: Dict[str, List[str]],
) -> None:
    assert one(service, "User") == "sysops-agent"
    assert one(service, "Group") == "sysops-agent"
    wanted = {"CAP_DAC_READ_SEARCH", "CAP_SYSLOG"}
    assert set(one(service, "AmbientCapabilities").split()) == wanted
    assert set(one(service, "CapabilityBoundingSet").split()) == wanted
    assert one(service, "NoNewPrivileges") == "yes"


def test_file_system_is_read_only_except_the_data_dir(service: Dict[str, List[str]]) -> None:
    assert one(service, "ProtectSystem") == "strict"
    assert one(service, "ProtectHome") == "yes"
    assert one(service, "PrivateTmp") == "yes"
    assert one(service, "ReadWritePaths") == "/var/lib/sysops-agent"
    assert one(service, "UMask") == "0077"


def test_hardening_keeps_what_collection_needs(service: Dict[str, List[str]]) -> None:
    # other pids and /proc/stat etc. must stay visible, /dev/kmsg readable
    assert service.get("ProtectProc", ["default"]) == ["default"]
    assert service.get("ProcSubset", ["all"]) == ["all"]
    assert "ProtectKernelLogs" not in service
    assert service.get("PrivateDevices", ["no"]) == ["no"]
    assert "/dev/kmsg r" in service.get("DeviceAllow", [])
    assert "PrivateUsers" not in service
    assert set(one(service, "RestrictAddressFamilies").split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
    }
    for key in (
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectControlGroups",
        "RestrictNamespaces",
        "LockPersonality",
        "MemoryDenyWriteExecute",
        "RestrictRealtime",
        "ProtectClock",
        "ProtectHostname",
    ):
        assert one(service, key) == "yes", key
    assert one(service, "SystemCallArchitectures") == "native"


def test_lifecycle_settings(service: Dict[str, List[str]]) -> None:
    assert one(service, "Type") == "notify"
    assert one(service, "NotifyAccess") == "main"
    assert one(service, "WatchdogSec") == "30"
    assert one(service, "Restart") == "on-failure"
    assert one(service, "RestartSec") == "5"
    assert one(service, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(service, "TimeoutStopSec") == "20"


def test_exec_start_matches_the_installer(service: Dict[str, List[str]]) -> None:
    exec_start = one(service, "ExecStart").split()
    assert exec_start[1:] == ["run", "--config", "/etc/sysops-agent/sysops-agent.toml"]
    installer = INSTALL_SH.read_text()
    assert 'BIN_PATH="/usr/local/bin/sysops-agent"' in installer
    assert exec_start[0] == "/usr/local/bin/sysops-agent"
    assert 'CONFIG_PATH="/etc/sysops-agent/sysops-agent.toml"' in installer
    assert 'DATA_DIR="/var/lib/sysops-agent"' in installer


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # ExecStart must name an executable that exists: point it at this Python
    # in a temporary copy; everything else is verified unchanged.
    text = UNIT.read_text().replace("/usr/local/bin/sysops-agent", sys.executable)
    copy = tmp_path / "sysops-agent.service"
    copy.write_text(text)
    # Documentation=man:sysops-agent(1) must resolve: the page the packages install
    man = tmp_path / "man"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "deploy" / "build_manpage.py"),
            str(man / "man1" / "sysops-agent.1"),
        ],
        check=True,
        timeout=60,
    )
    proc = subprocess.run(
        [analyze, "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, MANPATH=str(man)),
    )
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 and "Failed to" in output and "sysops-agent.service" not in output:
        pytest.skip(f"systemd-analyze verify cannot run here: {output}")
    assert proc.returncode == 0, output
    assert "sysops-agent.service" not in output, output


def test_documentation_names_the_man_page_and_the_readme() -> None:
    docs = parse_unit(UNIT.read_text())["Unit"]["Documentation"]
    assert docs == ["man:sysops-agent(1) file:///usr/share/doc/sysops-agent/README.md"]
