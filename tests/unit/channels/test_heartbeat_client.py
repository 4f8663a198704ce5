"""The heartbeat's pings through the agent's HTTP client, on a loopback server.

As with httpx before it, the heartbeat follows redirects (a monitor that moved
to https or to a new path still gets its pings); a failing monitor is counted.
"""

from __future__ import annotations

from sysops_agent.alerting.config import HeartbeatConfig
from sysops_agent.channels.heartbeat import Heartbeat
from sysops_agent.clock import VirtualClock
from tests.support.httpserver import HttpTestServer, Reply


async def test_a_ping_follows_a_redirect_and_posts_the_reason() -> None:
    async with HttpTestServer() as server:
        server.push(Reply(308, "", {"Location": server.url("/moved/ping")}), Reply(200, "OK"))
        config = HeartbeatConfig(url=server.url("/ping"), method="POST", style="plain")
        beat = Heartbeat(config, VirtualClock(0.0), lambda: "channel slack failing")
        try:
            assert await beat.ping()
        finally:
            await beat.aclose()
        assert [r.path for r in server.requests] == ["/ping", "/moved/ping"]
        assert [r.body for r in server.requests] == [b"channel slack failing"] * 2
        assert beat.sent == 1 and beat.failed == 0


async def test_a_failing_monitor_is_counted() -> None:
    async with HttpTestServer(Reply(503, "down")) as server:
        config = HeartbeatConfig(url=server.url("/ping"))
        beat = Heartbeat(config, VirtualClock(0.0), lambda: None)
        try:
            assert not await beat.ping()
            assert not await beat.ping()
        finally:
            await beat.aclose()
        assert (beat.sent, beat.failed) == (0, 2)
        assert [r.method for r in server.requests] == ["GET", "GET"]
