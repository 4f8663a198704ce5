# -*- coding: utf-8 -*-
"""sysops-agent.pyz's ``__main__.py``: refuse a Python older than 3.9 in words, then run.

``deploy/build_pyz.py`` puts this file at the top of the archive. Every Python
from 2.7 on must be able to parse it, so that an old interpreter gets as far
as the message instead of a ``SyntaxError`` from the package (its modules use
``from __future__ import annotations``, which 3.6 rejects): no f-strings, no
annotations, no keyword-only arguments, and nothing imported from the package
before the version check. ``tests/test_dist.py`` holds it to that with
``ast.parse(..., feature_version=(3, 4))`` and runs the archive on every old
Python it finds.
"""

import sys

MINIMUM = (3, 9)
GE = u"\u2265"
DASH = u"\u2014"


def os_release(path="/etc/os-release"):
    """The ``KEY=value`` fields of /etc/os-release (empty when it cannot be read)."""
    fields = {}
    try:
        with open(path) as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    fields[key] = value.strip().strip("\"'")
    except (IOError, OSError, UnicodeError):
        pass
    return fields


def hint(release):
    """Where this distribution has a Python >= 3.9, in a few words ('' when unknown)."""
    family = set((release.get("ID", "") + " " + release.get("ID_LIKE", "")).split())
    major = release.get("VERSION_ID", "").split(".")[0]
    if family & set(["rhel", "centos"]):  # Rocky, Alma and Oracle Linux say ID_LIKE="rhel ..."
        if major == "8":
            return "on RHEL 8: dnf install python39"
        if major == "7":
            return "on RHEL/CentOS 7 no package has one (rh-python38 is 3.8)"
    if "ubuntu" in family and major == "20":
        return "on Ubuntu 20.04: apt install python3.9"
    return ""


def refusal(version_info, release=None):
    """The message refusing this interpreter, or None when it is recent enough."""
    version = tuple(version_info[:2])
    if version >= MINIMUM:
        return None
    message = u"sysops-agent needs Python %s %d.%d; this is %d.%d" % (
        (GE,) + MINIMUM + version
    )
    advice = hint(os_release() if release is None else release)
    if advice:
        message += u" %s %s" % (DASH, advice)
    return message


def encode_for(message, stream):
    """``message`` as bytes ``stream`` can show: >= and - when its encoding lacks the signs."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        return message.encode(encoding)
    except (UnicodeError, LookupError):
        plain = message.replace(GE, u">=").replace(DASH, u"-")
        return plain.encode("ascii", "replace")


def main():
    message = refusal(sys.version_info)
    if message is not None:
        stream = getattr(sys.stderr, "buffer", sys.stderr)  # Python 3: bytes go to the buffer
        stream.write(encode_for(message, sys.stderr) + b"\n")
        stream.flush()
        return 1
    from sysops_agent.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
