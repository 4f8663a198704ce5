"""What the daemon's import path must not pull in (SPEC §10 memory budget, issue 7).

Each module below was once on the path of ``sysops-agent run`` and cost RSS for
nothing: OpenSSL through asyncio (4.4 MiB), shutil with bz2 and lzma through
argparse's help formatter and ``shutil.which`` (0.5 MiB), importlib.resources
and tempfile through importlib.abc, uuid with platform (0.25 MiB), difflib.
Checked in a fresh interpreter that imports what ``run`` imports, up to a
started daemon with the bundled config's components, console channel only,
started twice: the second start reads the SQLite history the first one left
(the anomaly analyzer's warm start, which once brought pathlib and urllib.parse).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.paths import ROOT

NOT_ON_THE_DAEMON_PATH = [
    "ssl",
    "_ssl",
    "_hashlib",
    "shutil",
    "bz2",
    "lzma",
    "tempfile",
    "importlib.resources",
    "uuid",
    "platform",
    "difflib",
    "sysops_agent.commands.history",
    "sysops_agent.commands.test_alert",
    "pathlib",
    "urllib.parse",
    "ipaddress",
    "sysops_agent.httpclient",
    "httpx",
    "aiosmtplib",
    "prometheus_client",
]


@pytest.mark.slow
def test_the_daemon_path_imports_none_of_the_costly_modules(tmp_path: Path) -> None:
    root = ROOT
    code = textwrap.dedent(
        f"""
        import sys
        from sysops_agent import cli, lazyssl
        lazyssl.import_asyncio()             # cli.main's first step
        cli.build_parser(["run"]).parse_args(["run"])
        import asyncio
        from sysops_agent.config import load_config
        from sysops_agent.daemon import Daemon

        loaded = load_config({str(root / "config" / "sysops-agent.toml")!r})
        import dataclasses
        agent = dataclasses.replace(loaded.config.agent, data_dir={str(tmp_path)!r}, pid_file="")
        loaded.config = dataclasses.replace(loaded.config, agent=agent)

        async def main():
            d = Daemon(loaded, None)
            await d.start()
            await asyncio.sleep(0.5)
            d.request_stop()
            await d.shutdown()

        asyncio.run(main())
        asyncio.run(main())  # again, now with a history database to warm-start from
        print(" ".join(m for m in {NOT_ON_THE_DAEMON_PATH!r} if m in sys.modules) or "none")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1:] == ["none"], proc.stdout
