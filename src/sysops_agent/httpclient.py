"""A small HTTP/1.1 client on asyncio streams (the channels', heartbeat's and remote_write's).

Why not httpx: with it (and httpcore, h11, anyio, idna, certifi, sniffio) the
fleet configuration — ``/metrics``, the Alertmanager channel and remote_write
— needed 8.5 MiB more RSS than the 30 MB budget allows (README,
"Dependencies"). What the agent needs is narrow: one request at a time per
channel, small JSON or protobuf bodies, small answers. httpx stays a dev
dependency as this client's oracle (``tests/unit/test_httpclient*.py``).

What it does:

- ``http`` and ``https`` URLs (IPv6 literals in brackets, ``user:pass@``
  becomes Basic auth); :mod:`ssl` is imported on the first ``https`` request
  only, so a plain-http host never loads OpenSSL (:mod:`sysops_agent.lazyssl`);
  the server is verified against the system store or the given context;
- a request with a body (``content`` bytes or ``json``) and headers; the
  answer's body as ``Content-Length``, chunked, or up to the close, at most
  ``max_response_bytes`` (:class:`ResponseTooLarge` beyond); gzip/deflate
  bodies are decoded;
- timeouts: ``connect`` (TCP and TLS handshake), ``read`` (sending the
  request, then the whole answer) and ``total`` (everything, redirects
  included): :class:`HttpTimeout`;
- keep-alive: idle connections are kept per origin and reused; a reused
  connection the server closed meanwhile is replaced once, transparently;
- redirects are followed only when asked (the heartbeat does, the channels do
  not: a 3xx is an answer there), as httpx does: 301/302 turn a POST into a
  GET, 303 anything but HEAD, 307/308 keep method and body; Authorization
  is dropped when the origin changes;
- proxies from ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY`` (the
  environment httpx honoured): absolute-form requests through an ``http://``
  proxy, a ``CONNECT`` tunnel for ``https`` targets.

Every failure is an :class:`HttpError` (subclasses: :class:`ConnectError`,
:class:`HttpTimeout`, :class:`InvalidURL`, :class:`InvalidRequest`,
:class:`RemoteProtocolError`). Messages never contain the request URL (a
webhook URL is a secret); callers redact anyway.

Size: the parser, the connection pool, redirects and proxies of one client;
each function is short.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import os
import re
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

if TYPE_CHECKING:
    import ssl

T = TypeVar("T")

#: the status line and headers of an answer may be at most this long
MAX_HEAD_BYTES = 64 * 1024
#: an answer's body may be at most this long (agent endpoints answer a few bytes)
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
#: redirects followed at most (when following)
DEFAULT_MAX_REDIRECTS = 5
DEFAULT_PORTS = {"http": 80, "https": 443}


class HttpError(Exception):
    """Every failure of a request (the message names no URL)."""


class ConnectError(HttpError):
    """No connection: DNS, refused, unreachable, TLS handshake or certificate."""


class HttpTimeout(HttpError):
    """A timeout; ``phase`` is ``connect``, ``read`` or ``total``."""

    def __init__(self, phase: str, seconds: float) -> None:
        super().__init__(f"{phase} timeout ({seconds:g} s)")
        self.phase = phase


class InvalidURL(HttpError):
    """Not an absolute http(s) URL this client can send to."""


class InvalidRequest(HttpError):
    """A header name or value that cannot be sent (CR, LF, ...)."""


class RemoteProtocolError(HttpError):
    """The server's answer is not HTTP/1.x, or the connection closed without one."""


class ServerDisconnected(RemoteProtocolError):
    """The connection closed before the first byte of an answer."""


class ResponseTooLarge(RemoteProtocolError):
    """The answer's body exceeds ``max_response_bytes``."""


@dataclass(frozen=True)
class Timeout:
    """Seconds; ``None`` = no limit."""

    connect: Optional[float] = 10.0
    read: Optional[float] = 10.0
    total: Optional[float] = None

    @classmethod
    def of(cls, value: Union[float, Timeout, None]) -> Timeout:
        """A number means that many seconds for each of connect, read and total."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(None, None, None)
        return cls(float(value), float(value), float(value))


class Headers(Mapping[str, str]):
    """Case-insensitive; repeated fields read as one, joined by ``, `` (as httpx)."""

    def __init__(self, items: Union[Mapping[str, str], List[Tuple[str, str]], None] = None) -> None:
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items or [])
        self.raw: List[Tuple[str, str]] = pairs
        joined: Dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        self._joined = joined

    def __getitem__(self, name: str) -> str:
        return self._joined[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._joined

    def __iter__(self) -> Iterator[str]:
        return iter(self._joined)

    def __len__(self) -> int:
        return len(self._joined)

    def get_list(self, name: str) -> List[str]:
        return [v for k, v in self.raw if k.lower() == name.lower()]

    def __repr__(self) -> str:
        return f"Headers({self.raw!r})"


@dataclass
class Response:
    status_code: int
    headers: Headers
    content: bytes = b""
    reason_phrase: str = ""
    http_version: str = "HTTP/1.1"

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        charset = "utf-8"
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip("\"' ")
        try:
            return self.content.decode(charset, errors="replace")
        except (LookupError, ValueError):  # unknown charset, or a NUL in its name
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


@dataclass
class URL:
    scheme: str
    host: str
    port: int
    #: path and query, as sent in the request line
    target: str
    userinfo: str = ""

    @property
    def origin(self) -> Tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.target}"


@dataclass
class Request:
    """What goes on the wire (the ``transport`` hook of tests receives this)."""

    method: str
    url: URL
    headers: Headers = field(default_factory=Headers)
    content: bytes = b""


#: a stand-in for the network (tests): a request in, a response out
Transport = Callable[[Request], Awaitable[Response]]

# characters sent as they are in a path or query; everything else is %-encoded
_SAFE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%"
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^#]*)")


def _quote(text: str) -> str:
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in text.encode("utf-8"))


def _basic(userinfo: str) -> str:
    """``Basic <base64 of user:password>`` from a URL's %-encoded ``user:password``."""
    import base64  # only for credentials in a URL

    user, _, password = userinfo.partition(":")
    return "Basic " + base64.b64encode(f"{_unquote(user)}:{_unquote(password)}".encode()).decode()


def _unquote(text: str) -> str:
    if "%" not in text:
        return text
    from urllib.parse import unquote  # only for a %-encoded user:password

    return unquote(text)


def parse_url(url: str) -> URL:
    """An absolute ``http``/``https`` URL; :class:`InvalidURL` otherwise."""
    m = _URL.match(url.strip())
    if m is None:
        raise InvalidURL("not an absolute http(s) URL")
    scheme, authority, rest = m.group(1).lower(), m.group(2), m.group(3)
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL(f"unsupported scheme {scheme!r} (http or https)")
    userinfo, _, hostport = authority.rpartition("@")
    if hostport.startswith("["):
        host, bracket, port_text = hostport[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise InvalidURL("bad IPv6 address")
        port_text = port_text[1:]
        if not re.match(r"^[0-9A-Fa-f:.]+(%[\w.-]+)?$", host):
            raise InvalidURL("bad IPv6 address")
    else:
        host, _, port_text = hostport.partition(":")
        if not host.isascii():  # the idna codec pulls in unicodedata (0.3 MiB): only when needed
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise InvalidURL("bad host name") from None
        host = host.lower()
        if not re.match(r"^[A-Za-z0-9._-]+$", host):
            raise InvalidURL("no host" if not host else "bad host name")
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            raise InvalidURL("bad port")
        port = int(port_text)
    else:
        port = DEFAULT_PORTS[scheme]
    target = _quote(rest) if rest else "/"
    if not target.startswith("/"):
        target = "/" + target
    return URL(scheme, host, port, target, userinfo)


# --- the answer ---------------------------------------------------------------


_STATUS_LINE = re.compile(rb"^HTTP/(\d)\.(\d) (\d{3})(?: ([^\r\n]*))?$")
_HEADER_NAME = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


async def _readline(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readline()
    except ValueError:  # longer than the reader's limit (64 KiB): no sane server sends that
        raise RemoteProtocolError("line too long") from None


async def _read_head(reader: asyncio.StreamReader) -> List[bytes]:
    """The lines of a status line and header block, without line ends."""
    lines: List[bytes] = []
    size = 0
    while True:
        line = await _readline(reader)
        size += len(line)
        if size > MAX_HEAD_BYTES:
            raise RemoteProtocolError("response head too long")
        if not line.endswith(b"\n"):
            if size == 0:
                raise ServerDisconnected("connection closed before an answer")
            raise RemoteProtocolError("answer cut short")
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        if not line:
            if lines:
                return lines
            continue  # tolerate blank lines before the status line (RFC 9112 2.2)
        lines.append(line)


def parse_head(lines: List[bytes]) -> Tuple[str, int, str, Headers]:
    """(version, status, reason, headers) of a status line and header lines."""
    m = _STATUS_LINE.match(lines[0])
    if m is None:
        raise RemoteProtocolError("not an HTTP/1.x status line")
    version = f"HTTP/{m.group(1).decode()}.{m.group(2).decode()}"
    pairs: List[Tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):  # obsolete line folding: continues the previous value
            if not pairs:
                raise RemoteProtocolError("continuation line before any header")
            name, value = pairs[-1]
            pairs[-1] = (name, (value + " " + line.strip(b" \t").decode("latin-1")).strip())
            continue
        name_b, colon, value_b = line.partition(b":")
        if not colon or not _HEADER_NAME.match(name_b):
            raise RemoteProtocolError("malformed header line")
        pairs.append((name_b.decode("ascii"), value_b.strip(b" \t").decode("latin-1")))
    reason = (m.group(4) or b"").decode("latin-1")
    return version, int(m.group(3)), reason, Headers(pairs)


def _content_length(headers: Headers) -> Optional[int]:
    values = {v.strip() for v in ",".join(headers.get_list("content-length")).split(",")}
    values.discard("")
    if not values:
        return None
    if len(values) > 1 or not all(v.isascii() and v.isdigit() for v in values):
        raise RemoteProtocolError("bad Content-Length")
    return int(values.pop())


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = bytearray()
    while True:
        line = await _readline(reader)
        if not line.endswith(b"\n"):
            raise RemoteProtocolError("chunked body cut short")
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or not re.match(rb"^[0-9A-Fa-f]{1,16}$", size_text):
            raise RemoteProtocolError("bad chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > limit:
            raise ResponseTooLarge(f"response body over {limit} bytes")
        try:
            body += await reader.readexactly(size)
        except asyncio.IncompleteReadError:
            raise RemoteProtocolError("chunked body cut short") from None
        if (await _readline(reader)).rstrip(b"\r\n") != b"":
            raise RemoteProtocolError("chunk not followed by CRLF")
    trailer = 0
    while True:  # trailer fields, ignored
        line = await _readline(reader)
        trailer += len(line)
        if not line.endswith(b"\n") or trailer > MAX_HEAD_BYTES:
            raise RemoteProtocolError("chunked body cut short")
        if line in (b"\r\n", b"\n"):
            return bytes(body)


async def _read_to_close(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = await reader.read(limit + 1)
    while body and len(body) <= limit:
        more = await reader.read(limit + 1 - len(body))
        if not more:
            break
        body += more
    if len(body) > limit:
        raise ResponseTooLarge(f"response body over {limit} bytes")
    return body


def _decode(body: bytes, encoding: str, limit: int) -> bytes:
    import zlib

    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding in ("identity", ""):
            continue
        if coding in ("gzip", "x-gzip"):
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            d = zlib.decompressobj(zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS)
        else:
            return body  # unknown coding: the raw bytes (only used as error text)
        try:
            body = d.decompress(body, limit + 1)
        except zlib.error:
            raise RemoteProtocolError(f"bad {coding} body") from None
        if len(body) > limit:
            raise ResponseTooLarge(f"response body over {limit} bytes")
    return body


async def read_response(
    reader: asyncio.StreamReader, method: str, limit: int = DEFAULT_MAX_RESPONSE_BYTES
) -> Tuple[Response, bool]:
    """One answer from ``reader``; and whether the connection may carry another request."""
    while True:
        version, status, reason, headers = parse_head(await _read_head(reader))
        if status == 101:
            raise RemoteProtocolError("unexpected protocol switch (101)")
        if status >= 200:
            break  # else an interim answer (100 Continue, 103 Early Hints): the real one follows
    reusable = version == "HTTP/1.1" and not any(
        t.strip().lower() == "close" for t in headers.get("connection", "").split(",")
    )
    codings = [c.strip().lower() for c in headers.get("transfer-encoding", "").split(",")]
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif codings[-1] == "chunked":
        body = await _read_chunked(reader, limit)
    elif codings != [""]:
        body, reusable = await _read_to_close(reader, limit), False
    else:
        length = _content_length(headers)
        if length is None:
            body, reusable = await _read_to_close(reader, limit), False
        elif length > limit:
            raise ResponseTooLarge(f"response body over {limit} bytes ({length})")
        else:
            try:
                body = await reader.readexactly(length)
            except asyncio.IncompleteReadError:
                raise RemoteProtocolError("body shorter than its Content-Length") from None
    if "content-encoding" in headers:
        body = _decode(body, headers["content-encoding"], limit)
    return Response(status, headers, body, reason, version), reusable


# --- the request ----------------------------------------------------------------


def encode_request(request: Request, absolute: bool = False) -> bytes:
    """The request line, headers and body (``absolute``: the URL, for an http proxy)."""
    target = str(request.url) if absolute else request.url.target
    lines = [f"{request.method} {target} HTTP/1.1"]
    for name, value in request.headers.raw:
        if not _TOKEN.match(name):
            raise InvalidRequest(f"invalid header name {name!r}")
        if any(c in value for c in "\r\n\0"):
            raise InvalidRequest(f"invalid value of header {name}")
        lines.append(f"{name}: {value}")
    try:
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidRequest("header value not latin-1") from None
    return head + request.content


def _env(name: str) -> str:
    return os.environ.get(name.lower()) or os.environ.get(name.upper()) or ""


def proxy_for(url: URL) -> Optional[URL]:
    """The proxy for ``url`` from the environment (as curl and httpx read it), or None."""
    no_proxy = _env("no_proxy")
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return None
        entry = entry.lstrip(".")
        if entry and (url.host == entry or url.host.endswith("." + entry)):
            return None
    value = _env(f"{url.scheme}_proxy") or _env("all_proxy")
    if not value:
        return None
    try:
        proxy = parse_url(value if "://" in value else "http://" + value)
    except InvalidURL as exc:
        raise InvalidURL(f"the proxy in the environment: {exc}") from None
    if proxy.scheme != "http":
        raise InvalidURL("the proxy in the environment: only http:// proxies are supported")
    return proxy


class _Deadline:
    """Per-step timeouts inside one request's total timeout."""

    def __init__(self, timeout: Timeout) -> None:
        self.timeout = timeout
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._end = None if timeout.total is None else loop.time() + timeout.total

    async def run(self, phase: str, aw: Awaitable[T]) -> T:
        limit = self.timeout.connect if phase == "connect" else self.timeout.read
        which = phase
        if self._end is not None:
            left = max(0.0, self._end - self._loop.time())
            if limit is None or left < limit:
                limit, which = left, "total"
        try:
            return await asyncio.wait_for(aw, limit)
        except asyncio.TimeoutError:
            seconds = self.timeout.total if which == "total" else limit
            raise HttpTimeout(which, seconds or 0.0) from None


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def alive(self) -> bool:
        return not (self.writer.is_closing() or self.reader.at_eof())

    def close(self) -> None:
        self.writer.close()


class AsyncClient:
    """Sends requests; keeps idle connections per origin until :meth:`aclose`."""

    def __init__(
        self,
        *,
        timeout: Union[float, Timeout, None] = 10.0,
        headers: Optional[Mapping[str, str]] = None,
        follow_redirects: bool = False,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_idle_per_origin: int = 2,
        ssl_context: Optional[ssl.SSLContext] = None,
        ca_file: str = "",
        trust_env: bool = True,
        transport: Optional[Transport] = None,
    ) -> None:
        self.timeout = Timeout.of(timeout)
        self.headers: Dict[str, str] = dict(headers or {})
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.max_response_bytes = max_response_bytes
        self.max_idle_per_origin = max_idle_per_origin
        self._ssl = ssl_context
        self._ca_file = ca_file
        self.trust_env = trust_env
        self._transport = transport
        self._idle: Dict[Tuple[str, str, int, str], List[_Connection]] = {}
        #: connections opened so far (keep-alive shows as fewer of these than requests)
        self.connections_opened = 0

    # -- API ---------------------------------------------------------------------

    async def get(self, url: str, *, headers: Optional[Mapping[str, str]] = None) -> Response:
        return await self.request("GET", url, headers=headers)

    async def post(
        self,
        url: str,
        *,
        content: Optional[bytes] = None,
        json: Any = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Response:
        return await self.request("POST", url, content=content, json=json, headers=headers)

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: Optional[bytes] = None,
        json: Any = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Response:
        """Send one request (and follow redirects when enabled); the final answer."""
        request = self.build_request(method, url, content=content, json=json, headers=headers)
        deadline = _Deadline(self.timeout)
        for _ in range(self.max_redirects + 1):
            response = await self._send(request, deadline)
            location = response.headers.get("location")
            if not (self.follow_redirects and location and 300 <= response.status_code < 400):
                return response
            if response.status_code in (300, 304, 305, 306):
                return response
            request = _redirected(request, response.status_code, location)
        raise RemoteProtocolError(f"more than {self.max_redirects} redirects")

    def build_request(
        self,
        method: str,
        url: str,
        *,
        content: Optional[bytes] = None,
        json: Any = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Request:
        target = parse_url(url)
        method = method.upper()
        if not _TOKEN.match(method):
            raise InvalidRequest("invalid method")
        merged: Dict[str, Tuple[str, str]] = {}
        for source in (self.headers, headers or {}):
            for name, value in source.items():
                merged[name.lower()] = (name, value)
        body = content or b""
        if json is not None:
            body = jsonlib.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
            merged.setdefault("content-type", ("Content-Type", "application/json"))
        if body or method in ("POST", "PUT", "PATCH"):
            merged["content-length"] = ("Content-Length", str(len(body)))
        if target.userinfo and "authorization" not in merged:
            merged["authorization"] = ("Authorization", _basic(target.userinfo))
        first = [("Host", target.host_header)]
        if "accept" not in merged:
            first.append(("Accept", "*/*"))
        return Request(method, target, Headers(first + list(merged.values())), body)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
        for conns in idle.values():
            for conn in conns:
                with contextlib.suppress(OSError, asyncio.TimeoutError):
                    await asyncio.wait_for(conn.writer.wait_closed(), 1.0)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the wire ------------------------------------------------------------------

    async def _send(self, request: Request, deadline: _Deadline) -> Response:
        if self._transport is not None:
            return await self._transport(request)
        proxy = proxy_for(request.url) if self.trust_env else None
        absolute = proxy is not None and request.url.scheme == "http"
        key = (*request.url.origin, str(proxy or ""))
        data = encode_request(request, absolute)
        idle = self._idle.get(key, [])
        while idle:
            conn = idle.pop()
            if not conn.alive():
                conn.close()
                continue
            try:
                return await self._exchange(conn, key, data, request.method, deadline)
            except (ConnectionError, ServerDisconnected):
                pass  # the server closed the idle connection meanwhile: a new one, once
        conn = await self._connect(request.url, proxy, deadline)
        try:
            return await self._exchange(conn, key, data, request.method, deadline)
        except OSError as exc:
            raise ConnectError(f"connection lost: {_os_error(exc)}") from None

    async def _exchange(
        self,
        conn: _Connection,
        key: Tuple[str, str, int, str],
        data: bytes,
        method: str,
        deadline: _Deadline,
    ) -> Response:
        keep = False
        try:
            conn.writer.write(data)
            await deadline.run("read", conn.writer.drain())
            response, keep = await deadline.run(
                "read", read_response(conn.reader, method, self.max_response_bytes)
            )
            return response
        finally:
            if keep and conn.alive() and len(self._idle.get(key, ())) < self.max_idle_per_origin:
                self._idle.setdefault(key, []).append(conn)
            else:
                conn.close()

    async def _connect(self, url: URL, proxy: Optional[URL], deadline: _Deadline) -> _Connection:
        context = self._ssl_context() if url.scheme == "https" else None
        try:
            if proxy is None:
                reader, writer = await deadline.run(
                    "connect",
                    asyncio.open_connection(
                        url.host,
                        url.port,
                        ssl=context,
                        server_hostname=url.host if context is not None else None,
                    ),
                )
            else:
                reader, writer = await deadline.run("connect", self._via_proxy(url, proxy, context))
        except OSError as exc:
            raise ConnectError(_os_error(exc)) from None
        self.connections_opened += 1
        return _Connection(reader, writer)

    async def _via_proxy(
        self, url: URL, proxy: URL, context: Optional[ssl.SSLContext]
    ) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if context is None:  # http: absolute-form requests to the proxy itself
            return await asyncio.open_connection(proxy.host, proxy.port)
        import socket

        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
            host = f"[{url.host}]" if ":" in url.host else url.host
            head = f"CONNECT {host}:{url.port} HTTP/1.1\r\nHost: {host}:{url.port}\r\n"
            if proxy.userinfo:
                head += f"Proxy-Authorization: {_basic(proxy.userinfo)}\r\n"
            await loop.sock_sendall(sock, (head + "\r\n").encode("latin-1"))
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk or len(answer) > MAX_HEAD_BYTES:
                    raise ConnectError("proxy closed the connection")
                answer += chunk
            status_line = answer.split(b"\r\n", 1)[0]
            m = _STATUS_LINE.match(status_line)
            if m is None or not m.group(3).startswith(b"2"):
                raise ConnectError(f"proxy refused the tunnel: {status_line[:100]!r}")
            return await asyncio.open_connection(sock=sock, ssl=context, server_hostname=url.host)
        except BaseException:
            sock.close()
            raise

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            import ssl  # the first https request (sysops_agent.lazyssl)

            try:
                self._ssl = ssl.create_default_context(cafile=self._ca_file or None)
            except OSError as exc:
                raise ConnectError(f"cannot load CA file {self._ca_file}: {exc}") from None
        return self._ssl


def _os_error(exc: OSError) -> str:
    reason = getattr(exc, "verify_message", None) or exc.strerror or str(exc)
    return f"{type(exc).__name__}: {reason}"


def _redirected(request: Request, status: int, location: str) -> Request:
    """The request a redirect asks for (httpx's rules)."""
    from urllib.parse import urljoin  # only when a redirect is followed

    url = parse_url(urljoin(str(request.url), location))
    method = request.method
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method = "GET"
    dropped = {"host"}
    content = request.content
    if method != request.method:
        dropped |= {"content-length", "content-type", "transfer-encoding"}
        content = b""
    if url.origin != request.url.origin and not (
        url.host == request.url.host and (request.url.scheme, url.scheme) == ("http", "https")
    ):
        dropped.add("authorization")
    headers = [("Host", url.host_header)] + [
        (k, v) for k, v in request.headers.raw if k.lower() not in dropped
    ]
    return Request(method, url, Headers(headers), content)
