"""Found by bench/fuzz.py (issue 18 item 3): an HTTP endpoint that answers a retryable
status with a body nested thousands deep made every HTTP channel raise RecursionError
instead of a ChannelError (``json_body`` looked for a Retry-After in it)."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from sysops_agent.alerting.retry import send_with_retry
from sysops_agent.redact import Redactor
from tests.support.httpserver import HttpTestServer, RecordingClock, Reply
from tests.unit.channels.test_http_faults import CHANNELS, ChannelRow, _alert


@pytest.fixture
async def server() -> AsyncIterator[HttpTestServer]:
    async with HttpTestServer() as s:
        yield s


@pytest.mark.parametrize("body", ["[" * 100_000, '{"a":' * 100_000])
@pytest.mark.parametrize("row", CHANNELS, ids=[r.name for r in CHANNELS])
async def test_a_body_nested_too_deep_is_a_retryable_error(
    server: HttpTestServer, row: ChannelRow, body: str
) -> None:
    server.push(Reply(503, body, {"content-type": "application/json"}))
    server.default = row.ok
    channel = row.make(server, Redactor())
    try:
        result = await send_with_retry(channel, [_alert()], RecordingClock())
    finally:
        await channel.aclose()
    assert result.ok and result.attempts == 2  # retried after the 503, then delivered
