"""asyncio without OpenSSL until something imports ssl; TLS works the moment it does.

Each case runs in a fresh interpreter: this test process has long imported ssl.
The deferral is enabled only on the Python versions the matrix tests
(``lazyssl.PROVEN``); elsewhere asyncio is imported the plain way, with ssl.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sysops_agent import lazyssl

#: the cases that need the deferral: on a Python outside the matrix it is off by design
deferring = pytest.mark.skipif(
    not lazyssl.deferral_proven(sys.version_info),
    reason="ssl deferral is off on a Python version the matrix does not test",
)

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


@deferring
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


@deferring
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
        import ssl, trustme  # the first import of ssl, as httpclient or aiosmtplib would do it
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


@deferring
def test_the_http_client_over_https_after_the_hand_over(tmp_path: Path) -> None:
    """The HTTP channels' path: the agent's client after the deferral, a real HTTPS request.

    (The client's TLS is asyncio's own, ``open_connection(ssl=...)``, so this needs
    the hand-over; ``tests/unit/test_httpclient.py`` also checks that the client's
    own first ``import ssl``, in a running loop, works.)
    """
    pytest.importorskip("trustme")
    out = run_python(
        """
        import sys, threading
        from sysops_agent import lazyssl
        assert lazyssl.import_asyncio()
        import asyncio
        from sysops_agent import httpclient
        assert "ssl" not in sys.modules
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
            async with httpclient.AsyncClient(ssl_context=client_ctx) as client:
                r = await client.post(url, content=b"alert")
                print(r.status_code, r.text)

        asyncio.run(main())
        httpd.shutdown()
        httpd.server_close()
        """,
        tmp_path,
    )
    assert out.split() == ["200", "ALERT"]


# ------------------------------------------------ where the deferral is enabled


@pytest.mark.parametrize(
    ("version", "proven"),
    [
        ((3, 8, 18, "final", 0), False),
        ((3, 9, 0, "final", 0), True),
        ((3, 11, 7), True),
        ((3, 13, 0, "final", 0), True),
        ((3, 14, 0, "candidate", 1), False),
        ((3, 15), False),
        ((4, 0, 0), False),
    ],
)
def test_the_deferral_is_enabled_on_the_tested_versions_only(version: tuple, proven: bool) -> None:
    assert lazyssl.deferral_proven(version) is proven


def test_an_unproven_python_imports_asyncio_the_plain_way(tmp_path: Path) -> None:
    """A Python newer than the matrix (3.14 simulated): asyncio with ssl, no hook, TLS as usual."""
    out = run_python(
        """
        import sys
        from sysops_agent import lazyssl
        print(lazyssl.import_asyncio((3, 14, 0, "final", 0)))
        print("ssl" in sys.modules, "libssl" in open("/proc/self/maps").read())
        import asyncio, ssl
        print(asyncio.sslproto.ssl is ssl, asyncio.base_events.ssl is ssl)
        print(any(type(f).__name__ == "_SSLWatcher" for f in sys.meta_path))
        print(lazyssl.decision())
        """,
        tmp_path,
    )
    lines = out.splitlines()
    assert lines[:4] == ["False", "True True", "True True", "False"]
    assert lines[4] == (
        "ssl loaded with asyncio: Python 3.14 is outside the versions the deferral "
        "is tested on (3.9 to 3.13)"
    )


def test_this_python_defers_when_it_is_in_the_matrix(tmp_path: Path) -> None:
    out = run_python(
        """
        import sys
        from sysops_agent import lazyssl
        print(lazyssl.import_asyncio(), "ssl" in sys.modules)
        print(lazyssl.decision())
        """,
        tmp_path,
    )
    deferred = lazyssl.deferral_proven(sys.version_info)
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    lines = out.splitlines()
    assert lines[0] == f"{deferred} {not deferred}"
    if deferred:
        assert lines[1] == f"ssl deferred until first use (Python {version})"
    else:
        assert lines[1].startswith(f"ssl loaded with asyncio: Python {version} is outside")


@deferring
def test_the_daemon_logs_the_decision_once_at_debug_level(tmp_path: Path) -> None:
    from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs

    procfs = minimal_procfs(tmp_path)
    config = agent_config(tmp_path, procfs)
    config.write_text(config.read_text().replace('log_level = "info"', 'log_level = "debug"'))
    agent = AgentProcess(["run", "--config", str(config)])
    try:
        agent.wait_stderr("collectors: ")
    finally:
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)
    logged = [line for line in agent.stderr if "sysops_agent.lazyssl" in line]
    assert len(logged) == 1, logged
    assert " DEBUG sysops_agent.lazyssl: ssl deferred until first use (Python " in logged[0]
