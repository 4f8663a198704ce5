from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.support.servers import Server, require_binary, start_alertmanager


@pytest.fixture
def prometheus_bin() -> str:
    return require_binary("SYSOPS_PROMETHEUS_BIN", "prometheus")


@pytest.fixture
def alertmanager_bin() -> str:
    return require_binary("SYSOPS_ALERTMANAGER_BIN", "prometheus-alertmanager", "alertmanager")


@pytest.fixture
def alertmanager(alertmanager_bin: str, tmp_path: Path) -> Iterator[Server]:
    server = start_alertmanager(alertmanager_bin, tmp_path / "alertmanager")
    try:
        yield server
    finally:
        server.stop()
