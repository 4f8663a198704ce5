"""Suite-wide fixtures."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

INTEGRATION = Path(__file__).resolve().parent / "integration"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Everything under tests/integration/ is marked ``integration``, new files included."""
    for item in items:
        if INTEGRATION in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _main_thread_event_loop() -> Iterator[None]:
    """Python 3.9 only: give the main thread an event loop that is closed at the end.

    On 3.9 ``asyncio.get_event_loop()`` silently creates a loop the first time
    it is called in the main thread, and pytest-asyncio 1.2 (the last release
    for 3.9) calls it around every async test. Nobody closes that loop, so its
    ``__del__`` later raises an "unclosed event loop" ResourceWarning inside
    whichever test happens to trigger garbage collection. Owning that loop
    here removes the noise without hiding real leaks.
    """
    if sys.version_info >= (3, 10):
        yield
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()
