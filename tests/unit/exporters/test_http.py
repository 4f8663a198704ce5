"""The exporter's HTTP server under misuse: routes, timeouts, the connection cap, TLS, basic auth.

Issue 18: one thread per connection and no read timeout let 1,000 idle
connections exhaust the agent's threads and file descriptors.
"""

from __future__ import annotations

import base64
import errno
import http.client
import socket
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from sysops_agent.exporters.config import PrometheusConfig
from sysops_agent.exporters.http import ExporterServer, parse_head
from sysops_agent.exporters.prometheus import PrometheusExporter
from sysops_agent.exporters.webconfig import WebConfigError, load_web_config
from sysops_agent.storage.store import Store

BODY = b"# HELP x y\n# TYPE x gauge\nx 1\n"


@pytest.fixture
def server() -> Iterator[ExporterServer]:
    srv = ExporterServer(
        lambda: BODY, "127.0.0.1", 0, max_connections=4, read_timeout=0.5, write_timeout=2
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def request(
    port: int,
    method: str = "GET",
    path: str = "/metrics",
    headers: Optional[Dict[str, str]] = None,
    context: Optional[ssl.SSLContext] = None,
) -> Tuple[int, Dict[str, str], bytes]:
    conn: http.client.HTTPConnection
    if context is not None:
        conn = http.client.HTTPSConnection("localhost", port, timeout=5, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait_closed_by_peer(sock: socket.socket, within: float) -> bool:
    """True when the server closes ``sock`` (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_routes(server: ExporterServer) -> None:
    port = server.bound_port
    status, headers, body = request(port)
    assert (status, body) == (200, BODY)
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    status, headers, body = request(port, path="/metrics?x=1")
    assert status == 200
    status, headers, body = request(port, path="/")
    assert status == 200 and b'href="/metrics"' in body
    assert headers["content-type"].startswith("text/html")
    for path in ("/favicon.ico", "/metrics/x", "/../etc/passwd", "/debug"):
        assert request(port, path=path)[0] == 404, path
    status, headers, _ = request(port, method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, headers, body = request(port, method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == str(len(BODY))


def test_keep_alive_serves_several_requests_on_one_connection(server: ExporterServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.bound_port, timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read() == BODY
    finally:
        conn.close()


def test_malformed_and_oversized_heads() -> None:
    assert parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") is not None
    assert parse_head(b"GET /metrics\r\n\r\n") is None
    assert parse_head(b"GET /metrics HTTP/2\r\n\r\n") is None
    assert parse_head(b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n") is None
    srv = ExporterServer(lambda: BODY, "127.0.0.1", 0, read_timeout=2)
    srv.start()
    try:
        with socket.create_connection(("127.0.0.1", srv.bound_port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 431 ")
        with socket.create_connection(("127.0.0.1", srv.bound_port), timeout=5) as s:
            s.sendall(b"BREW /pot\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 400 ")
    finally:
        srv.stop()


def test_silent_and_slow_clients_are_dropped_after_the_read_timeout(
    server: ExporterServer,
) -> None:
    port = server.bound_port
    with (
        socket.create_connection(("127.0.0.1", port)) as silent,
        socket.create_connection(("127.0.0.1", port)) as slow,
    ):
        slow.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the end of the head
        started = time.monotonic()
        assert wait_closed_by_peer(silent, within=5)
        assert wait_closed_by_peer(slow, within=5)
        assert time.monotonic() - started < 3  # read_timeout 0.5 s
    assert server.timed_out >= 2
    assert request(port)[0] == 200


def test_connections_beyond_the_cap_are_refused_and_served_again_after(
    server: ExporterServer,
) -> None:
    port = server.bound_port
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    try:
        time.sleep(0.1)  # let the loop accept the four
        extra = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        try:
            assert all(wait_closed_by_peer(s, within=0.4) for s in extra)
        finally:
            for s in extra:
                s.close()
        assert server.refused >= 20
    finally:
        for s in held:
            s.close()
    time.sleep(0.2)
    assert request(port)[0] == 200


def test_one_thread_whatever_the_number_of_connections() -> None:
    """The old server started a thread per connection: 200 idle clients, 200 threads."""
    srv = ExporterServer(lambda: BODY, "127.0.0.1", 0, max_connections=16, read_timeout=30)
    srv.start()
    before = threading.active_count()
    socks: List[socket.socket] = []
    try:
        socks = [socket.create_connection(("127.0.0.1", srv.bound_port)) for _ in range(200)]
        time.sleep(0.5)
        assert threading.active_count() == before
    finally:
        for s in socks:
            s.close()
        srv.stop()


def test_address_in_use_names_the_address_and_the_config_keys() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        exporter = PrometheusExporter(
            PrometheusConfig(enabled=True, port=port), Store(), hostname="h"
        )
        with pytest.raises(OSError) as info:
            exporter.start()
    assert info.value.errno == errno.EADDRINUSE
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "prometheus.port" in message and "prometheus.listen_address" in message
    assert exporter.port is None


def test_default_port_is_not_node_exporters() -> None:
    assert PrometheusConfig().port not in (9100, 9090, 9091, 9093, 9094)


# --- web config: basic auth and TLS (exporter-toolkit's file format) --------

# bcrypt of s3cret, cost 10, with the $2y$ prefix htpasswd -B writes (exporter-toolkit's docs)
HASH = "$2y$10$Tb0v1l7Jmn/q/K0yVix6PusnvtTF9Lxn4hS1xqdAUvi5KM.frbwki"
PASSWORD = "s3cret"


def basic(user: str, password: str) -> Dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_bcrypt_hash_of_the_docs_matches() -> None:
    bcrypt = pytest.importorskip("bcrypt")
    assert bcrypt.checkpw(PASSWORD.encode(), HASH.encode())


def test_basic_auth_from_web_config(tmp_path: Path) -> None:
    pytest.importorskip("bcrypt")
    pytest.importorskip("yaml")
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: {HASH}\n")
    exporter = PrometheusExporter(
        PrometheusConfig(enabled=True, port=0, web_config_file=str(web)), Store(), hostname="h"
    )
    exporter.start()
    try:
        port = exporter.port
        assert port
        status, headers, _ = request(port)
        assert status == 401 and headers["www-authenticate"].startswith("Basic")
        assert request(port, headers=basic("prometheus", "wrong"))[0] == 401
        assert request(port, headers=basic("nobody", PASSWORD))[0] == 401
        assert request(port, headers={"Authorization": "Basic !!!"})[0] == 401
        assert request(port, path="/", headers={})[0] == 401
        status, _, body = request(port, headers=basic("prometheus", PASSWORD))
        assert status == 200 and b"sysops_agent_info" in body
        # cached: the second check does not pay bcrypt again, and still answers right
        assert request(port, headers=basic("prometheus", PASSWORD))[0] == 200
    finally:
        exporter.stop()


def test_missing_bcrypt_is_an_error_never_an_open_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("yaml")
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: {HASH}\n")
    monkeypatch.setitem(sys.modules, "bcrypt", None)  # "not installed"
    with pytest.raises(WebConfigError, match=r"sysops-agent\[exporter-web\]"):
        load_web_config(str(web))
    exporter = PrometheusExporter(
        PrometheusConfig(enabled=True, port=0, web_config_file=str(web)), Store(), hostname="h"
    )
    with pytest.raises(WebConfigError):
        exporter.start()
    assert exporter.port is None


def test_missing_yaml_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users: {}\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(WebConfigError, match="PyYAML"):
        load_web_config(str(web))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls_server_config:\n  cert_file: a.crt\n", "cert_file and key_file"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n", "cipher"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n"
            "  client_auth_type: RequireAnyClientCert\n",
            "not supported",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n"
            "  client_auth_type: RequireAndVerifyClientCert\n",
            "client_ca_file",
        ),
        ("basic_auth_users:\n  u: plaintext\n", "not a bcrypt hash"),
        ("bogus: 1\n", "bogus"),
        ("- a\n", "mapping"),
        ("a: [\n", "not valid YAML"),
        ("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n", "missing"),
    ],
)
def test_web_config_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    pytest.importorskip("yaml")
    web = tmp_path / "web.yml"
    web.write_text(text)
    with pytest.raises(WebConfigError, match=message) as info:
        load_web_config(str(web))
    assert str(web) in str(info.value)


def test_check_config_reports_a_bad_web_config(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    from sysops_agent.config import load_config

    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  u: plaintext\n")
    text = f'[prometheus]\nenabled = true\nweb_config_file = "{web}"\n'
    problems = load_config(text=text, env={}).problems
    assert [p.path for p in problems] == ["prometheus.web_config_file"]


def test_tls_and_basic_auth(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    pytest.importorskip("yaml")
    pytest.importorskip("bcrypt")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    web = tmp_path / "web.yml"
    # relative paths are relative to the web config file, as in exporter-toolkit
    web.write_text(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n"
        f"  min_version: TLS12\nbasic_auth_users:\n  prometheus: {HASH}\n"
    )
    exporter = PrometheusExporter(
        PrometheusConfig(enabled=True, port=0, web_config_file=str(web)), Store(), hostname="h"
    )
    exporter.start()
    try:
        port = exporter.port
        assert port
        client = ssl.create_default_context()
        ca.configure_trust(client)
        status, _, body = request(port, headers=basic("prometheus", PASSWORD), context=client)
        assert status == 200 and b"sysops_agent_info" in body
        assert request(port, context=client)[0] == 401
        # plain HTTP on the TLS port gets no metrics
        with pytest.raises((OSError, http.client.HTTPException)):
            request(port, headers=basic("prometheus", PASSWORD))
    finally:
        exporter.stop()


def test_refused_and_timed_out_connections_are_exported() -> None:
    exporter = PrometheusExporter(
        PrometheusConfig(enabled=True, port=0, max_connections=1, read_timeout_secs=0.3),
        Store(),
        hostname="h",
    )
    exporter.start()
    try:
        port = exporter.port
        assert port
        with socket.create_connection(("127.0.0.1", port)) as idle:
            time.sleep(0.1)
            with socket.create_connection(("127.0.0.1", port)) as extra:
                assert wait_closed_by_peer(extra, within=2)  # the cap: reset at once
            assert wait_closed_by_peer(idle, within=3)  # the read timeout
        time.sleep(0.1)
        body = request(port)[2].decode()
    finally:
        exporter.stop()
    assert "sysops_agent_exporter_connections_refused_total 1" in body.splitlines()
    assert "sysops_agent_exporter_connections_timed_out_total 1" in body.splitlines()
