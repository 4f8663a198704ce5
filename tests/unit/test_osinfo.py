"""Distro detection from fixture /etc trees, and the syslog file chosen per distro (SPEC §9)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import pytest

from sysops_agent.osinfo import (
    DEBIAN_SYSLOG,
    REDHAT_SYSLOG,
    Distro,
    default_syslog_paths,
    detect_distro,
    parse_os_release,
)
from tests.support.paths import FIXTURES

ETC = FIXTURES / "etc"


@pytest.mark.parametrize(
    ("tree", "distro_id", "version", "like", "name", "family", "syslog"),
    [
        (
            "ubuntu2204",
            "ubuntu",
            "22.04",
            ("debian",),
            "Ubuntu 22.04.4 LTS",
            "debian",
            [DEBIAN_SYSLOG],
        ),
        (
            "debian12",
            "debian",
            "12",
            (),
            "Debian GNU/Linux 12 (bookworm)",
            "debian",
            [DEBIAN_SYSLOG],
        ),
        (
            "rocky9",
            "rocky",
            "9.3",
            ("rhel", "centos", "fedora"),
            "Rocky Linux 9.3 (Blue Onyx)",
            "redhat",
            [REDHAT_SYSLOG],
        ),
        (
            "opensuse_leap",
            "opensuse-leap",
            "15.5",
            ("suse", "opensuse"),
            "openSUSE Leap 15.5",
            "redhat",
            [REDHAT_SYSLOG],
        ),
        (
            "centos7_release_only",
            "centos",
            "7.9.2009",
            ("rhel", "fedora"),
            "CentOS Linux release 7.9.2009 (Core)",
            "redhat",
            [REDHAT_SYSLOG],
        ),
        (
            "centos6_redhat_release",
            "centos",
            "6.10",
            ("rhel", "fedora"),
            "CentOS release 6.10 (Final)",
            "redhat",
            [REDHAT_SYSLOG],
        ),
        (
            "rhel6_redhat_release_only",
            "rhel",
            "6.10",
            ("fedora",),
            "Red Hat Enterprise Linux Server release 6.10 (Santiago)",
            "redhat",
            [REDHAT_SYSLOG],
        ),
        (
            "alpine",
            "alpine",
            "3.19.1",
            (),
            "Alpine Linux v3.19",
            "unknown",
            [DEBIAN_SYSLOG, REDHAT_SYSLOG],
        ),
        ("none", "linux", "", (), "Linux", "unknown", [DEBIAN_SYSLOG, REDHAT_SYSLOG]),
    ],
)
def test_detect_distro(
    tree: str,
    distro_id: str,
    version: str,
    like: Tuple[str, ...],
    name: str,
    family: str,
    syslog: List[str],
) -> None:
    d = detect_distro(str(ETC / tree))
    assert d == Distro(distro_id, version, like, name)
    assert d.family == family
    assert default_syslog_paths(d) == syslog


def test_missing_etc_root_is_unknown(tmp_path: Path) -> None:
    d = detect_distro(str(tmp_path / "does-not-exist"))
    assert d.id == "linux"
    assert default_syslog_paths(d) == [DEBIAN_SYSLOG, REDHAT_SYSLOG]


def test_empty_os_release_falls_back_to_release_files(tmp_path: Path) -> None:
    (tmp_path / "os-release").write_text("")
    (tmp_path / "centos-release").write_text("CentOS Linux release 7.6.1810 (Core)\n")
    assert detect_distro(str(tmp_path)).version == "7.6.1810"


def test_os_release_quoting_and_comments() -> None:
    text = (
        "# comment\n"
        "\n"
        'NAME="Quoted \\"Name\\" \\$HOME"\n'
        "ID='single'\n"
        "VERSION_ID=bare\n"
        "not a key value line\n"
        "BAD KEY=x\n"
    )
    assert parse_os_release(text) == {
        "NAME": 'Quoted "Name" $HOME',
        "ID": "single",
        "VERSION_ID": "bare",
    }


def test_uppercase_id_is_normalised(tmp_path: Path) -> None:
    (tmp_path / "os-release").write_text('ID="Ubuntu"\nID_LIKE="Debian"\n')
    d = detect_distro(str(tmp_path))
    assert (d.id, d.like, d.family) == ("ubuntu", ("debian",), "debian")
