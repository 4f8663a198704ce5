"""The agent's HTTP client against httpx, its oracle, over real loopback sockets.

Each oracle test sends the same request with httpx and with
:mod:`sysops_agent.httpclient` to a scripted server that answers raw bytes,
then compares what the server received (method, target, body, the headers
both send) and what each client returned (status, headers, body). The
server's answers cover Content-Length, chunked and close-delimited bodies,
gzip, interim 1xx answers and folded headers; TLS runs against a trustme
CA. The rest checks what httpx cannot be compared on: timeouts, the size
limit, keep-alive reuse, errors, proxies and that plain http loads no ssl.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import ssl
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import httpx
import pytest

from sysops_agent import httpclient
from tests.support.httpserver import read_head
from tests.support.paths import ROOT


@dataclass
class Received:
    method: str
    target: str
    headers: Dict[str, str]
    body: bytes


class RawServer:
    """Answers each request with the next scripted raw bytes (then closes if asked)."""

    def __init__(self, host: str = "127.0.0.1", context: Optional[ssl.SSLContext] = None) -> None:
        self.host = host
        self.context = context
        self.answers: List[Tuple[bytes, bool]] = []
        self.received: List[Received] = []
        self.connections = 0
        self.port = 0
        self._server: Optional[asyncio.AbstractServer] = None
        self._writers: List[asyncio.StreamWriter] = []

    def push(self, raw: bytes, close: bool = False, times: int = 1) -> None:
        self.answers.extend([(raw, close)] * times)

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, self.host, 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in self._writers:
            w.close()
        await self._server.wait_closed()

    def url(self, path: str = "/", scheme: str = "http") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                head = await read_head(reader)
                if head is None:
                    return
                method, target, headers = head
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append(Received(method, target, headers, body))
                raw, close = self.answers.pop(0) if self.answers else (OK, False)
                if raw == b"HANG":
                    await asyncio.sleep(3600)
                writer.write(raw)
                await writer.drain()
                if close:
                    writer.close()
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            return


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
#: headers both clients send on their own and may word differently
CLIENT_CHOICES = {"accept-encoding", "connection", "user-agent", "accept"}


async def both(
    server: RawServer,
    method: str,
    url: str,
    raw: bytes,
    *,
    close: bool = False,
    **kwargs: Any,
) -> Tuple[Any, httpclient.Response]:
    """The same request by httpx and by ours; each gets ``raw`` as its answer."""
    server.push(raw, close)
    async with httpx.AsyncClient(trust_env=False) as oracle:
        expected = await oracle.request(method, url, **kwargs)
    server.push(raw, close)
    async with httpclient.AsyncClient(trust_env=False) as ours:
        got = await ours.request(method, url, **kwargs)
    theirs, mine = server.received[-2:]
    assert (mine.method, mine.target, mine.body) == (theirs.method, theirs.target, theirs.body)
    for name in set(theirs.headers) - CLIENT_CHOICES:
        assert mine.headers.get(name) == theirs.headers[name], name
    assert set(mine.headers) - CLIENT_CHOICES <= set(theirs.headers)
    return expected, got


def same_response(expected: Any, got: httpclient.Response) -> None:
    assert got.status_code == expected.status_code
    assert got.reason_phrase == expected.reason_phrase
    assert got.content == expected.content
    assert got.text == expected.text
    for name in expected.headers:
        assert got.headers.get(name) == expected.headers.get(name), name


REQUESTS = [
    ("GET", "/", {}),
    ("GET", "/a/b?x=1&y=two", {}),
    ("POST", "/api/v2/alerts", {"json": [{"labels": {"alertname": "X", "é": "ü"}}]}),
    ("POST", "/api/v1/write", {"content": b"\x00\x01snappy\xff", "headers": {"X-A": "b"}}),
    ("PUT", "/hook", {"json": {"a": 1}, "headers": {"Authorization": "Bearer t"}}),
    ("PATCH", "/hook", {"content": b""}),
    ("POST", "/with space/ü?q=a b", {"content": b"x"}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), REQUESTS)
async def test_requests_reach_the_server_as_httpx_sends_them(
    method: str, path: str, kwargs: Dict[str, Any]
) -> None:
    async with RawServer() as server:
        expected, got = await both(server, method, server.url(path), OK, **kwargs)
        same_response(expected, got)


ANSWERS = {
    "content-length": b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n",
    "close-delimited": b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"a": 1}',
    "http/1.0": b"HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\nnop",
    "no reason": b"HTTP/1.1 429 \r\nRetry-After: 7\r\nRetry-After: 8\r\nContent-Length: 0\r\n\r\n",
    "interim 100": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Length: 4\r\n\r\nbusy",
    "204": b"HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n",
    "gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
    % (len(gzip.compress(b"zipped")), gzip.compress(b"zipped")),
    "latin-1 charset": b"HTTP/1.1 400 Bad\r\nContent-Type: text/plain; charset=latin-1\r\n"
    b"Content-Length: 2\r\n\r\n\xe9\xe8",
    "bad utf-8": b"HTTP/1.1 500 Oops\r\nContent-Length: 3\r\n\r\n\xff\xfeA",
    "lf only": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    "redirect": b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("name", list(ANSWERS))
async def test_answers_read_as_httpx_reads_them(name: str) -> None:
    close = name == "close-delimited"
    async with RawServer() as server:
        expected, got = await both(
            server, "POST", server.url("/x"), ANSWERS[name], close=close, json={"k": "v"}
        )
        same_response(expected, got)
        if name == "close-delimited":
            assert got.json() == {"a": 1}


async def test_redirects_followed_as_httpx_follows_them() -> None:
    async with RawServer() as server:
        for status, method in ((302, "GET"), (303, "GET"), (307, "POST"), (308, "POST")):
            raw = b"HTTP/1.1 %d X\r\nLocation: /next?a=1\r\nContent-Length: 0\r\n\r\n" % status
            for client in (
                httpx.AsyncClient(trust_env=False, follow_redirects=True),
                httpclient.AsyncClient(trust_env=False, follow_redirects=True),
            ):
                server.push(raw)
                async with client:
                    response = await client.request("POST", server.url("/first"), content=b"b")
                assert response.status_code == 200
            first_a, second_a, first_b, second_b = server.received[-4:]
            assert (second_b.method, second_b.target, second_b.body) == (
                second_a.method,
                second_a.target,
                second_a.body,
            )
            assert second_b.method == method and first_b.target == first_a.target


async def test_a_redirect_to_another_origin_drops_the_authorization() -> None:
    async with RawServer() as target, RawServer() as first:
        first.push(
            b"HTTP/1.1 307 X\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n"
            % target.url("/b").encode()
        )
        async with httpclient.AsyncClient(follow_redirects=True, trust_env=False) as client:
            response = await client.post(
                first.url("/a"), content=b"x", headers={"Authorization": "Bearer s3cret"}
            )
        assert response.status_code == 200
        assert first.received[0].headers["authorization"] == "Bearer s3cret"
        assert "authorization" not in target.received[0].headers
        assert target.received[0].body == b"x"


async def test_redirects_are_answers_unless_following() -> None:
    async with RawServer() as server, httpclient.AsyncClient(trust_env=False) as client:
        server.push(ANSWERS["redirect"])
        response = await client.get(server.url())
        assert response.status_code == 302 and len(server.received) == 1


async def test_ipv6_literal() -> None:
    try:
        server = RawServer("::1")
        await server.__aenter__()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        expected, got = await both(server, "GET", server.url("/v6"), OK)
        same_response(expected, got)
        assert server.received[-1].headers["host"] == f"[::1]:{server.port}"
    finally:
        await server.__aexit__()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tuple[ssl.SSLContext, ssl.SSLContext, Path]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1", "::1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server, client, ca_file


async def test_https_as_httpx(tls: Tuple[ssl.SSLContext, ssl.SSLContext, Path]) -> None:
    server_ctx, client_ctx, ca_file = tls
    async with RawServer(context=server_ctx) as server:
        url = server.url("/tls", scheme="https")
        server.push(ANSWERS["chunked"])
        async with httpx.AsyncClient(verify=client_ctx, trust_env=False) as oracle:
            expected = await oracle.post(url, json={"a": 1})
        server.push(ANSWERS["chunked"])
        async with httpclient.AsyncClient(ca_file=str(ca_file), trust_env=False) as ours:
            got = await ours.post(url, json={"a": 1})
            same_response(expected, got)
            assert (await ours.get(url)).status_code == 200
            assert ours.connections_opened == 1  # kept alive over TLS too
        assert server.received[0].body == server.received[1].body


async def test_https_refuses_an_unknown_certificate(
    tls: Tuple[ssl.SSLContext, ssl.SSLContext, Path],
) -> None:
    async with RawServer(context=tls[0]) as server, httpclient.AsyncClient() as client:
        with pytest.raises(httpclient.ConnectError, match="certificate"):
            await client.get(server.url(scheme="https"))


async def test_keep_alive_reuses_one_connection_per_origin() -> None:
    async with RawServer() as server, httpclient.AsyncClient(trust_env=False) as client:
        for _ in range(5):
            assert (await client.post(server.url(), json=[1])).status_code == 200
        assert client.connections_opened == server.connections == 1
        server.push(OK, close=True)  # the server closes after this answer ...
        await client.get(server.url())
        await client.get(server.url())  # ... so this one needs a new connection
        assert client.connections_opened == server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async with RawServer() as server, httpclient.AsyncClient(trust_env=False) as client:
        await client.get(server.url())
        for writer in server._writers:  # the server's idle timeout
            writer.close()
        await asyncio.sleep(0.05)
        assert (await client.post(server.url(), content=b"again")).status_code == 200
        assert server.received[-1].body == b"again" and client.connections_opened == 2


async def test_http_1_0_and_connection_close_are_not_reused() -> None:
    async with RawServer() as server, httpclient.AsyncClient(trust_env=False) as client:
        server.push(ANSWERS["http/1.0"])
        server.push(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        for _ in range(3):
            await client.get(server.url())
        assert client.connections_opened == 3


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + b"x" * 1024 + b"\r\n"
        b"400\r\n" + b"x" * 1024 + b"\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 1500,
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
        % (len(gzip.compress(b"x" * 5000)), gzip.compress(b"x" * 5000)),
    ],
    ids=["content-length", "chunked", "close-delimited", "gzip bomb"],
)
async def test_the_size_limit(raw: bytes) -> None:
    async with RawServer() as server:
        server.push(raw, close=True)
        async with httpclient.AsyncClient(max_response_bytes=1024, trust_env=False) as client:
            with pytest.raises(httpclient.ResponseTooLarge):
                await client.get(server.url())


async def test_read_and_total_timeouts() -> None:
    async with RawServer() as server:
        server.push(b"HANG")
        async with httpclient.AsyncClient(timeout=0.2, trust_env=False) as client:
            with pytest.raises(httpclient.HttpTimeout) as info:
                await client.get(server.url())
        assert info.value.phase in ("read", "total")
        server.push(b"HANG")
        timeout = httpclient.Timeout(connect=5, read=5, total=0.2)
        async with httpclient.AsyncClient(timeout=timeout, trust_env=False) as client:
            with pytest.raises(httpclient.HttpTimeout) as info:
                await client.get(server.url())
        assert info.value.phase == "total"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", httpclient.ServerDisconnected),
        (b"HTTP/1.1 200 OK\r\nContent-Len", httpclient.RemoteProtocolError),
        (b"SSH-2.0-OpenSSH\r\n\r\n", httpclient.RemoteProtocolError),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", httpclient.RemoteProtocolError),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            httpclient.RemoteProtocolError,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            httpclient.RemoteProtocolError,
        ),
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", httpclient.RemoteProtocolError),
        # found by bench/fuzz.py: str.isdigit() is true for a superscript two
        (b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n", httpclient.RemoteProtocolError),
        (b"HTTP/1.1 200 OK\r\nX: " + b"x" * 70_000 + b"\r\n\r\n", httpclient.RemoteProtocolError),
    ],
    ids=[
        "closed",
        "cut head",
        "not http",
        "short body",
        "two lengths",
        "bad chunk",
        "bad header",
        "superscript length",
        "70 KB header line",
    ],
)
async def test_broken_answers(raw: bytes, error: type) -> None:
    async with RawServer() as server, httpclient.AsyncClient(trust_env=False) as client:
        server.push(raw, close=True)
        with pytest.raises(error):
            await client.get(server.url())


def test_a_charset_name_with_a_nul_reads_as_utf8() -> None:
    """Found by bench/fuzz.py: ``bytes.decode`` raises ValueError for such a name."""
    headers = httpclient.Headers({"Content-Type": "text/plain; charset=lat\x00in-1"})
    assert httpclient.Response(400, headers, "é".encode()).text == "é"


async def test_errors_name_no_url() -> None:
    async with RawServer() as server:
        port = server.port
    async with httpclient.AsyncClient(trust_env=False) as client:
        with pytest.raises(httpclient.ConnectError) as info:
            await client.get(f"http://127.0.0.1:{port}/secret-token")
        assert "secret-token" not in str(info.value)
        for url in (
            "ftp://host/secret-token",
            "http:///secret-token",
            "http://h:99999/x",
            "http://h:\u00b2/",
            "nope",
        ):
            with pytest.raises(httpclient.InvalidURL) as bad:
                await client.get(url)
            assert "secret-token" not in str(bad.value)
        with pytest.raises(httpclient.InvalidRequest):
            await client.get("http://127.0.0.1:1/", headers={"X": "a\r\nInjected: 1"})


def test_an_international_host_name_as_httpx_encodes_it() -> None:
    url = "http://Bücher.example:8080/p"
    assert httpclient.parse_url(url).host == httpx.URL(url).raw_host.decode()
    assert httpclient.parse_url("http://EXAMPLE.com/").host == "example.com"


async def test_user_info_becomes_basic_auth_as_in_httpx() -> None:
    async with RawServer() as server:
        url = server.url("/").replace("://", "://us%40er:p%3Ass@")
        await both(server, "GET", url, OK)
        assert server.received[-1].headers["authorization"] == "Basic dXNAZXI6cDpzcw=="


async def test_http_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with RawServer() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url("").rstrip("/"))
        monkeypatch.setenv("NO_PROXY", "skip.test")
        async with httpclient.AsyncClient() as client:
            await client.get("http://target.test:8080/p?q=1")
        assert proxy.received[0].target == "http://target.test:8080/p?q=1"
        assert proxy.received[0].headers["host"] == "target.test:8080"
        target = httpclient.parse_url("http://a.skip.test/")
        assert httpclient.proxy_for(target) is None
    for unsupported in ("socks5://127.0.0.1:1080", "https://proxy.test"):
        monkeypatch.setenv("HTTP_PROXY", unsupported)
        async with httpclient.AsyncClient() as client:
            with pytest.raises(httpclient.InvalidURL, match="proxy in the environment"):
                await client.get("http://target.test/")


async def test_https_through_a_connect_tunnel(
    tls: Tuple[ssl.SSLContext, ssl.SSLContext, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tunnels: List[bytes] = []

    async def tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        tunnels.append(head.split(b"\r\n")[0])
        host, port = head.split()[1].decode().rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    proxy = await asyncio.start_server(tunnel, "127.0.0.1", 0)
    try:
        port = proxy.sockets[0].getsockname()[1]
        async with RawServer(context=tls[0]) as server:
            monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{port}")
            async with httpclient.AsyncClient(ssl_context=tls[1]) as client:
                response = await client.post(server.url("/t", "https"), json={"a": 1})
            assert response.status_code == 200
            assert tunnels == [f"CONNECT 127.0.0.1:{server.port} HTTP/1.1".encode()]
            assert json.loads(server.received[0].body) == {"a": 1}
    finally:
        proxy.close()
        await proxy.wait_closed()


@pytest.mark.slow
def test_plain_http_loads_no_ssl_and_https_does(tmp_path: Path) -> None:
    """Issue 15: plain-http channels must not import ssl (after lazyssl's deferral)."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(pem)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        plain, secure = server.stdout.readline().split()
        code = textwrap.dedent(
            f"""
            import sys
            from sysops_agent import lazyssl
            assert lazyssl.import_asyncio()
            import asyncio
            from sysops_agent import httpclient

            async def main():
                async with httpclient.AsyncClient(trust_env=False) as client:
                    r = await client.post("http://127.0.0.1:{plain}/", json={{"a": 1}})
                    print(r.status_code, "ssl" in sys.modules, "unicodedata" in sys.modules)
                async with httpclient.AsyncClient(ca_file={str(tmp_path / "ca.pem")!r}) as c:
                    r = await c.post("https://127.0.0.1:{secure}/", json={{"a": 1}})
                    print(r.status_code, "ssl" in sys.modules, "unicodedata" in sys.modules)

            asyncio.run(main())
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        assert proc.returncode == 0, proc.stderr
        plain_line, https_line = proc.stdout.split("\n")[:2]
        assert plain_line == "200 False False"  # no ssl, no unicodedata (the idna codec's)
        assert https_line.startswith("200 True")
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


SERVER = """
import http.server, ssl, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
secure = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH); ctx.load_cert_chain(sys.argv[1])
secure.socket = ctx.wrap_socket(secure.socket, server_side=True)
for s in (plain, secure): threading.Thread(target=s.serve_forever, daemon=True).start()
print(plain.server_address[1], secure.server_address[1], flush=True)
sys.stdin.read() if False else threading.Event().wait()
"""
