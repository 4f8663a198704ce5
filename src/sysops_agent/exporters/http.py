"""The exporter's HTTP server: one event loop in one thread, bounded in every direction.

The previous server (``ThreadingMixIn`` + ``wsgiref``) started one thread per
connection and never timed a read out: 1,000 idle connections gave 1,006
threads, +27 MB of RSS and ``[Errno 24] Too many open files`` in every
collector (issue 18). This one serves every connection from a single asyncio
loop in a dedicated thread (the agent's own loop never waits for a scraper)
and bounds what a client can take:

- ``max_connections`` connections at a time; the excess is accepted and reset
  at once (counted in :attr:`ExporterServer.refused`), so a flood costs one
  file descriptor for a few microseconds per attempt;
- ``read_timeout`` for the request head, and for the idle time between two
  requests on a kept-alive connection: a slow or silent client is dropped;
- ``write_timeout`` for the response: a client that stops reading is dropped;
- a request head of at most :data:`MAX_HEAD_BYTES`;
- ``GET``/``HEAD`` of ``/`` (a tiny landing page) and ``/metrics`` only:
  404 for other paths, 405 for other methods;
- optional TLS and HTTP basic auth from an exporter-toolkit web config
  (:mod:`sysops_agent.exporters.webconfig`).

The socket is bound in :meth:`ExporterServer.start`'s caller, so "address in
use" is an ``OSError`` there, not in the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from typing import TYPE_CHECKING, Callable, Dict, Optional, Set, Tuple

if TYPE_CHECKING:
    import ssl

    from sysops_agent.exporters.webconfig import WebConfig

log = logging.getLogger(__name__)

#: the request line and headers together; Prometheus sends about 300 bytes
MAX_HEAD_BYTES = 8192
#: pending connections the kernel queues before we accept them
LISTEN_BACKLOG = 128

LANDING_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>SysOps Agent</title></head>\n"
    b'<body><h1>SysOps Agent</h1><p><a href="/metrics">Metrics</a></p></body></html>\n'
)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


class Request:
    """What the server keeps of one request head."""

    __slots__ = ("headers", "method", "path", "version")

    def __init__(self, method: str, path: str, version: str, headers: Dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.version = version
        self.headers = headers

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


def parse_head(head: bytes) -> Optional[Request]:
    """The request line and headers (lower-cased names); None when malformed."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    method, target, version = parts
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None
        headers[name.lower()] = value.strip()
    path = target.split("?", 1)[0]
    return Request(method, path, version, headers)


def response(
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    *,
    keep_alive: bool,
    head_only: bool = False,
    extra: Tuple[Tuple[str, str], ...] = (),
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: " + ("keep-alive" if keep_alive else "close"),
        *(f"{k}: {v}" for k, v in extra),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


class ExporterServer:
    """Serves ``render()`` on ``/metrics``; :meth:`start` binds, :meth:`stop` closes."""

    def __init__(
        self,
        render: Callable[[], bytes],
        address: str,
        port: int,
        *,
        max_connections: int = 32,
        read_timeout: float = 5.0,
        write_timeout: float = 10.0,
        web: Optional[WebConfig] = None,
    ) -> None:
        self.render = render
        self.address = address
        self.port = port
        self.max_connections = max_connections
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.web = web
        #: connections reset because ``max_connections`` were open
        self.refused = 0
        #: connections dropped because a read or write timed out
        self.timed_out = 0
        self.active = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._sock: Optional[socket.socket] = None
        self._stop: Optional[asyncio.Event] = None
        self._tasks: Set[asyncio.Task[None]] = set()

    @property
    def bound_port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        """Bind (``OSError`` here when the address is in use) and serve from a thread."""
        host = self.address.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, self.port))
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        ssl_context = self.web.ssl_context() if self.web is not None else None
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(sock, ssl_context, ready))
            except BaseException as e:  # reported to start() when it happens before ready
                failure.append(e)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="prometheus-exporter", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            self._thread.join(5)
            self._thread = None
            sock.close()
            raise failure[0]

    async def _serve(
        self, sock: socket.socket, ssl_context: Optional[ssl.SSLContext], ready: threading.Event
    ) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(
            self._client,
            sock=sock,
            limit=MAX_HEAD_BYTES,
            ssl=ssl_context,
            ssl_handshake_timeout=self.read_timeout if ssl_context is not None else None,
        )
        ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            await server.wait_closed()
            # Python < 3.12 does not wait for the connections: end them here
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        """Stop serving, close the socket and every connection (idempotent)."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and self._stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._stop.set)
        if thread is not None:
            thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active >= self.max_connections:
            self.refused += 1
            writer.transport.abort()
            return
        self.active += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except asyncio.TimeoutError:
            self.timed_out += 1
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self.active -= 1
            if task is not None:
                self._tasks.discard(task)
            writer.transport.abort()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; True to wait for another on this connection."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.read_timeout)
        except asyncio.LimitOverrunError:
            await self._send(writer, response(431, b"request head too large\n", keep_alive=False))
            return False
        except asyncio.IncompleteReadError:
            return False  # closed between requests: the normal end of a kept-alive connection
        request = parse_head(head)
        if request is None:
            await self._send(writer, response(400, b"bad request\n", keep_alive=False))
            return False
        # a GET has no body; one announcing a body is answered, then the connection closed
        has_body = request.headers.get("content-length", "0") not in ("", "0") or (
            "transfer-encoding" in request.headers
        )
        keep_alive = request.keep_alive and not has_body
        await self._send(writer, self._answer(request, keep_alive))
        return keep_alive

    def _answer(self, request: Request, keep_alive: bool) -> bytes:
        head_only = request.method == "HEAD"
        if request.method not in ("GET", "HEAD"):
            return response(
                405, b"method not allowed\n", keep_alive=keep_alive, extra=(("Allow", "GET, HEAD"),)
            )
        if self.web is not None and not self.web.authorized(request.headers.get("authorization")):
            return response(
                401,
                b"unauthorized\n",
                keep_alive=keep_alive,
                head_only=head_only,
                extra=(("WWW-Authenticate", 'Basic realm="sysops-agent"'),),
            )
        if request.path == "/metrics":
            try:
                body = self.render()
            except Exception:
                log.exception("rendering /metrics failed")
                return response(500, b"internal error\n", keep_alive=False, head_only=head_only)
            return response(
                200, body, METRICS_CONTENT_TYPE, keep_alive=keep_alive, head_only=head_only
            )
        if request.path == "/":
            return response(
                200,
                LANDING_PAGE,
                "text/html; charset=utf-8",
                keep_alive=keep_alive,
                head_only=head_only,
            )
        return response(404, b"not found\n", keep_alive=keep_alive, head_only=head_only)

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self.write_timeout)
