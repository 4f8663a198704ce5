"""The control socket: who may talk, what a request may be, and a real round trip."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any, Dict

import pytest

from sysops_agent.clock import SystemClock
from sysops_agent.commands.silence import parse_duration
from sysops_agent.commands.status import WIDTH, render
from sysops_agent.control import (
    MAX_REQUEST_BYTES,
    ControlServer,
    ControlUnavailable,
    peer_allowed,
    request,
)
from sysops_agent.control_api import degraded


@pytest.mark.parametrize(
    ("peer", "own", "ok"),
    [(1000, 1000, True), (0, 1000, True), (1001, 1000, False), (65534, 0, False), (0, 0, True)],
)
def test_peer_allowed(peer: int, own: int, ok: bool) -> None:
    assert peer_allowed(peer, own) is ok


def server(path: str = "/nonexistent/x.sock") -> ControlServer:
    return ControlServer(path, {"echo": lambda req: {"got": req.get("x")}}, SystemClock())


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"cmd": "reboot"}', "unknown cmd"),
        (b"{" + b" " * MAX_REQUEST_BYTES + b"}", "larger than"),
    ],
)
def test_dispatch_refuses(raw: bytes, fragment: str) -> None:
    answer = server().dispatch(raw)
    assert answer["ok"] is False and fragment in answer["error"]


def test_dispatch_answers() -> None:
    assert server().dispatch(b'{"cmd": "echo", "x": 5}') == {"got": 5, "ok": True}


def test_round_trip_over_a_real_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "data" / "control.sock")

    async def main() -> Dict[str, Any]:
        srv = server(path)
        assert await srv.start()
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o600
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(None, request, path, {"cmd": "echo", "x": "hi"})
        await srv.close()
        assert not os.path.exists(path)
        return answer

    assert asyncio.run(main()) == {"got": "hi", "ok": True}


def test_a_stale_socket_is_replaced_and_a_file_is_not(tmp_path: Path) -> None:
    import socket

    stale = tmp_path / "control.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()  # a socket file nobody listens on: left by a dead agent

    async def main(path: str) -> bool:
        srv = server(path)
        ok = await srv.start()
        await srv.close()
        return ok

    assert asyncio.run(main(str(stale))) is True
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert asyncio.run(main(str(plain))) is False
    assert plain.read_text() == "x"


def test_unwritable_place_runs_on_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")

    async def main() -> bool:
        return await server(str(blocker / "data" / "control.sock")).start()

    assert asyncio.run(main()) is False
    assert [r.message for r in caplog.records if "not created" in r.message]


def test_no_daemon(tmp_path: Path) -> None:
    with pytest.raises(ControlUnavailable, match="no agent is running"):
        request(str(tmp_path / "control.sock"), {"cmd": "status"})


@pytest.mark.parametrize(
    ("text", "secs"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1d", 86400)]
)
def test_parse_duration(text: str, secs: float) -> None:
    assert parse_duration(text) == secs


@pytest.mark.parametrize("text", ["", "2", "h", "2x", "2h junk"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


NOW = 1_764_570_000.0


def status(**over: Any) -> Dict[str, Any]:
    st: Dict[str, Any] = {
        "version": "0.1.0",
        "hostname": "db-3",
        "pid": 4242,
        "now": NOW,
        "uptime_secs": 7384.0,
        "rss_bytes": 24_000_000,
        "cpu_secs": 12.5,
        "cpu_percent": 0.17,
        "alerts": [
            {
                "id": "d20854e9-aaaa",
                "severity": "critical",
                "since": NOW - 300,
                "metric": "disk_usage_percent",
                "labels": {"mountpoint": "/srv/a-very-long-mount-point-name/" + "x" * 80},
                "analyzer": "threshold",
                "value": 91.0,
                "value_text": "91.0%",
                "message": "...",
                "muted": "silenced",
            }
        ],
        "muted_total": {"silenced": 1},
        "channels": [
            {
                "name": "slack",
                "sent": 3,
                "failed": 1,
                "queued": 0,
                "disabled": None,
                "last_ok": NOW - 600,
                "last_error": [NOW - 60, "HTTP 500 " + "e" * 120],
            }
        ],
        "collectors": [
            {
                "name": "cpu",
                "interval_secs": 10,
                "last_run": NOW - 3,
                "duration_secs": 0.002,
                "failures": 0,
                "last_error": None,
            }
        ],
        "log_sources": [],
        "silences": [
            {
                "id": "217b99b4-bbbb",
                "matchers": ["metric=disk_usage_percent"],
                "starts_at": NOW - 60,
                "ends_at": NOW + 3600,
                "comment": "disk swap",
                "created_by": "ops",
            }
        ],
        "maintenance": [],
    }
    st.update(over)
    return st


def test_render_fits_100_columns_and_shows_everything() -> None:
    text = render(status())
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    for needle in ("db-3", "critical", "91.0%", "silenced", "slack", "217b99b4", "disk swap"):
        assert needle in text
    assert "health: degraded" in text


DEGRADED_CASES = [
    ({}, True),  # the slack error is newer than its last success
    ({"channels": []}, False),
    (
        {"channels": [dict(status()["channels"][0], last_ok=NOW)]},  # recovered since
        False,
    ),
    ({"channels": [dict(status()["channels"][0], disabled="401 Unauthorized")]}, True),
    ({"channels": [], "collectors": [dict(status()["collectors"][0], last_error="boom")]}, True),
]


@pytest.mark.parametrize(("over", "bad"), DEGRADED_CASES)
def test_degraded(over: Dict[str, Any], bad: bool) -> None:
    assert bool(degraded(status(**over))) is bad


def test_a_failing_handler_gets_an_answer(caplog: pytest.LogCaptureFixture) -> None:
    def boom(req: Dict[str, Any]) -> Dict[str, Any]:
        raise RuntimeError("bug")

    srv = ControlServer("/nonexistent/x.sock", {"boom": boom}, SystemClock())
    answer = srv.dispatch(b'{"cmd": "boom"}')
    assert answer["ok"] is False and "internal error" in answer["error"]
    assert any("control request 'boom' failed" in r.message for r in caplog.records)
