"""A real HTTP/1.1 server on 127.0.0.1 for channel tests, scripted per request.

Channel tests talk to it through a real socket with the channel's own HTTP
client (:mod:`sysops_agent.httpclient`), so connection handling, status codes, headers and bodies are the
real thing. Every request is recorded; each answer comes from the script
(:meth:`HttpTestServer.push`) or, when the script is empty, the default.
A :class:`Reply` can also hang (never answer until the server stops) or
close the connection without an answer.

Also here: :func:`mock_transport`, the client's ``transport`` hook from a
plain function (a request in, a response out: no socket), and
:class:`RecordingClock`, a Clock whose ``sleep`` returns at once
and records the requested delay, for checking backoff and Retry-After
without waiting.
"""

from __future__ import annotations

import asyncio
import http
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Union

from sysops_agent import httpclient


def mock_transport(
    handler: Callable[[httpclient.Request], httpclient.Response],
) -> httpclient.Transport:
    """``handler`` as the client's transport (it may raise an ``httpclient.HttpError``)."""

    async def transport(request: httpclient.Request) -> httpclient.Response:
        return handler(request)

    return transport


def response(
    status: int, body: Union[bytes, str] = b"", headers: Optional[Dict[str, str]] = None
) -> httpclient.Response:
    content = body.encode() if isinstance(body, str) else body
    return httpclient.Response(status, httpclient.Headers(headers or {}), content)


async def read_head(reader: asyncio.StreamReader) -> Optional[Tuple[str, str, Dict[str, str]]]:
    """One request's method, target and headers (names lower-cased); None at end of stream."""
    line = await reader.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: Dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            return method, target, headers
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()


@dataclass
class Reply:
    status: int = 200
    body: Union[bytes, str, Dict[str, Any], List[Any]] = b""
    headers: Dict[str, str] = field(default_factory=dict)
    #: never answer (until the server stops)
    hang: bool = False
    #: close the connection without answering
    drop: bool = False

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Request:
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpTestServer:
    def __init__(self, default: Optional[Reply] = None) -> None:
        self.default = default or Reply(200, "ok")
        self.script: Deque[Reply] = deque()
        self.requests: List[Request] = []
        self._server: Optional[asyncio.AbstractServer] = None
        self._stop = asyncio.Event()
        self._arrived = asyncio.Event()
        self._writers: List[asyncio.StreamWriter] = []
        self.port = 0

    async def __aenter__(self) -> HttpTestServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
            for w in self._writers:
                w.close()
            await self._server.wait_closed()
            self._server = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    async def wait_requests(self, n: int, timeout: float = 5.0) -> None:
        async def until() -> None:
            while len(self.requests) < n:
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(until(), timeout)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            while True:
                head = await read_head(reader)
                if head is None:
                    return
                method, path, headers = head
                body = b""
                if "content-length" in headers:
                    body = await reader.readexactly(int(headers["content-length"]))
                self.requests.append(Request(method, path, headers, body))
                self._arrived.set()
                reply = self.script.popleft() if self.script else self.default
                if reply.hang:
                    await self._stop.wait()
                    return
                if reply.drop:
                    return
                payload = reply.encoded()
                reason = http.HTTPStatus(reply.status).phrase
                head = [f"HTTP/1.1 {reply.status} {reason}"]
                out_headers = dict(reply.headers)
                if reply.status != 204 and not 100 <= reply.status < 200:
                    out_headers.setdefault("Content-Length", str(len(payload)))
                    if not isinstance(reply.body, (bytes, str)):
                        out_headers.setdefault("Content-Type", "application/json")
                else:
                    payload = b""
                head += [f"{k}: {v}" for k, v in out_headers.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()


class RecordingClock:
    """A Clock that never waits: ``sleep`` records the delay and moves time on."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: List[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)
