"""A small threaded WSGI server for ``/metrics`` on one address, stoppable cleanly.

``prometheus_client.start_http_server`` does much the same, but older releases
(which our ``prometheus_client>=0.17`` allows) do not return the server, so it
could not be stopped on shutdown or reload; these few lines keep the server
object, a named thread and a handler that writes no access log.
"""

from __future__ import annotations

import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any, Tuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: a scrape every 15 s would flood the daemon's output."""

    def log_message(self, format: str, *args: Any) -> None:
        return None


def serve_wsgi(app: Any, address: str, port: int) -> Tuple[WSGIServer, threading.Thread]:
    """Bind ``address:port`` (IPv4 or IPv6) and serve ``app`` from a daemon thread."""
    host = address.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(ThreadingMixIn, WSGIServer):
        address_family = family
        daemon_threads = True
        allow_reuse_address = True

    server = make_server(host, port, app, Server, handler_class=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, name="prometheus-exporter", kwargs={"poll_interval": 0.5}
    )
    thread.daemon = True
    thread.start()
    return server, thread
