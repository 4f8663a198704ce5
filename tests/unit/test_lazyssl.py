"""asyncio without OpenSSL until something imports ssl; TLS works the moment it does.

Each case runs in a fresh interpreter: this test process has long imported ssl.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: every case starts a fresh interpreter
pytestmark = pytest.mark.slow


def run_python(code: str, tmp_path: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_asyncio_is_imported_without_openssl(tmp_path: Path) -> None:
    out = run_python(
        """
        import sys
        from sysops_agent import lazyssl
        assert lazyssl.import_asyncio()
        import asyncio
        asyncio.run(asyncio.sleep(0))
        maps = open("/proc/self/maps").read()
        print("ssl" in sys.modules, "libssl" in maps, "asyncio" in sys.modules)
        """,
        tmp_path,
    )
    assert out.split() == ["False", "False", "True"]


def test_tls_through_asyncio_after_a_later_import(tmp_path: Path) -> None:
    """A real TLS handshake on loopback, server and client both asyncio, after the hand-over."""
    pytest.importorskip("trustme")
    out = run_python(
        """
        import sys
        from sysops_agent import lazyssl
        assert lazyssl.import_asyncio()
        import asyncio
        assert asyncio.sslproto.ssl is None
        import ssl, trustme  # the first import of ssl, as httpx or aiosmtplib would do it
        assert asyncio.base_events.ssl is ssl and asyncio.selector_events.ssl is ssl
        assert asyncio.sslproto.ssl is ssl

        ca = trustme.CA()
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)

        async def echo(reader, writer):
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()

        async def main():
            server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname="127.0.0.1"
            )
            writer.write(b"hello over tls\\n")
            line = await reader.readline()
            print(line.decode().strip(), writer.get_extra_info("ssl_object").version())
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()

        asyncio.run(main())
        """,
        tmp_path,
    )
    words = out.split()
    assert words[:3] == ["HELLO", "OVER", "TLS"]
    assert words[3].startswith("TLSv1.")


def test_nothing_to_defer_when_ssl_is_already_loaded(tmp_path: Path) -> None:
    out = run_python(
        """
        import ssl
        from sysops_agent import lazyssl
        print(lazyssl.import_asyncio())
        import asyncio
        print(asyncio.sslproto.ssl is ssl)
        """,
        tmp_path,
    )
    assert out.split() == ["False", "True"]


def test_httpx_over_https_after_the_hand_over(tmp_path: Path) -> None:
    """The HTTP channels' path: httpx imported after the deferral, a real HTTPS request.

    (httpx's TLS is anyio's own, on ``ssl.MemoryBIO``, so this holds even without
    the hand-over; aiosmtplib's STARTTLS above is what needs asyncio's.)
    """
    pytest.importorskip("trustme")
    out = run_python(
        """
        import sys, threading
        from sysops_agent import lazyssl
        assert lazyssl.import_asyncio()
        import asyncio
        import httpx  # imports ssl
        import ssl, trustme
        from http.server import BaseHTTPRequestHandler, HTTPServer

        ca = trustme.CA()
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body.upper())

            def log_message(self, *args):
                pass

        httpd = HTTPServer(("127.0.0.1", 0), Handler)
        httpd.socket = server_ctx.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"https://127.0.0.1:{httpd.server_address[1]}/hook"

        async def main():
            async with httpx.AsyncClient(verify=client_ctx) as client:
                r = await client.post(url, content=b"alert")
                print(r.status_code, r.text)

        asyncio.run(main())
        httpd.shutdown()
        httpd.server_close()
        """,
        tmp_path,
    )
    assert out.split() == ["200", "ALERT"]
