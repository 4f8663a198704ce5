"""Which distribution we run on, and where it keeps its syslog file (SPEC §9).

``<etc_root>/os-release`` (freedesktop.org format: ``KEY=value`` lines, values
optionally quoted with shell rules) is the source on every current distro.
Older CentOS/RHEL (6 and earlier, some 7 installs) only ship
``/etc/centos-release`` or ``/etc/redhat-release`` with one line such as
``CentOS Linux release 7.9.2009 (Core)``. ``etc_root`` is a parameter so
that tests use fixture trees.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from sysops_agent.fsutil import read_text

#: syslog files written by rsyslog's default configuration per family
DEBIAN_SYSLOG = "/var/log/syslog"
REDHAT_SYSLOG = "/var/log/messages"

_DEBIAN_FAMILY = frozenset({"debian", "ubuntu", "linuxmint", "raspbian", "pop", "kali"})
_REDHAT_FAMILY = frozenset(
    {
        "rhel",
        "centos",
        "rocky",
        "almalinux",
        "fedora",
        "ol",
        "amzn",
        "suse",
        "sles",
        "opensuse",
        "opensuse-leap",
        "opensuse-tumbleweed",
    }
)

#: name prefixes of release-file lines, most specific first -> (id, like)
_RELEASE_NAMES: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = (
    ("centos stream", "centos", ("rhel", "fedora")),
    ("centos", "centos", ("rhel", "fedora")),
    ("rocky", "rocky", ("rhel", "centos", "fedora")),
    ("almalinux", "almalinux", ("rhel", "centos", "fedora")),
    ("red hat", "rhel", ("fedora",)),
    ("fedora", "fedora", ()),
    ("oracle", "ol", ("fedora",)),
    ("scientific", "scientific", ("rhel", "fedora")),
)
_RELEASE_VERSION = re.compile(r"release\s+([0-9][0-9.]*)", re.IGNORECASE)


@dataclass(frozen=True)
class Distro:
    #: os-release ``ID`` (lower case), e.g. "ubuntu", "rocky"; "linux" when unknown
    id: str
    #: ``VERSION_ID``, e.g. "22.04", "9.3", "7.9.2009"; "" when unknown
    version: str
    #: ``ID_LIKE`` entries, e.g. ("rhel", "centos", "fedora")
    like: Tuple[str, ...]
    #: ``PRETTY_NAME`` (or ``NAME``), for humans
    name: str

    @property
    def family(self) -> str:
        """ "debian", "redhat" (incl. SUSE, which also logs to /var/log/messages) or "unknown"."""
        ids = (self.id, *self.like)
        if any(i in _DEBIAN_FAMILY for i in ids):
            return "debian"
        if any(i in _REDHAT_FAMILY for i in ids):
            return "redhat"
        return "unknown"


UNKNOWN = Distro("linux", "", (), "Linux")


def parse_os_release(text: str) -> Dict[str, str]:
    """``KEY=value`` pairs; values may be "double" or 'single' quoted, with \\-escapes."""
    out: Dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.replace("_", "").isalnum():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = re.sub(r"\\([\\$\"`])", r"\1", value)
        out[key.strip()] = value
    return out


def distro_from_os_release(text: str) -> Distro:
    f = parse_os_release(text)
    distro_id = f.get("ID", "linux").lower() or "linux"
    return Distro(
        id=distro_id,
        version=f.get("VERSION_ID", ""),
        like=tuple(f.get("ID_LIKE", "").lower().split()),
        name=f.get("PRETTY_NAME") or f.get("NAME") or "Linux",
    )


def distro_from_release_line(text: str) -> Optional[Distro]:
    """Parse ``/etc/centos-release`` / ``/etc/redhat-release`` contents."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not line:
        return None
    lower = line.lower()
    distro_id: str = "rhel"  # redhat-release exists only on the RHEL family
    like: Tuple[str, ...] = ("fedora",)
    for prefix, known_id, known_like in _RELEASE_NAMES:
        if lower.startswith(prefix):
            distro_id, like = known_id, known_like
            break
    m = _RELEASE_VERSION.search(line)
    return Distro(distro_id, m.group(1) if m else "", like, line)


def _read(path: str) -> Optional[str]:
    try:
        return read_text(path)
    except OSError:
        return None


def detect_distro(etc_root: str = "/etc") -> Distro:
    """os-release first, then centos-release, then redhat-release; :data:`UNKNOWN` otherwise."""
    text = _read(os.path.join(etc_root, "os-release"))
    if text is not None and text.strip():
        return distro_from_os_release(text)
    for name in ("centos-release", "redhat-release"):
        text = _read(os.path.join(etc_root, name))
        if text is not None:
            distro = distro_from_release_line(text)
            if distro is not None:
                return distro
    return UNKNOWN


def default_syslog_paths(distro: Distro) -> List[str]:
    """The syslog file(s) to follow when the config names none, most likely first."""
    family = distro.family
    if family == "debian":
        return [DEBIAN_SYSLOG]
    if family == "redhat":
        return [REDHAT_SYSLOG]
    return [DEBIAN_SYSLOG, REDHAT_SYSLOG]
