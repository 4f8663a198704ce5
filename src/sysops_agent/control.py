"""The local control socket: ``<data_dir>/control.sock``, one JSON request per connection.

The daemon listens on a Unix stream socket (no TCP port) created with mode
0600 in its data directory. Every connection is checked with ``SO_PEERCRED``:
only the agent's own uid and root are served (:func:`peer_allowed`); anyone
else gets an error answer and is logged. A connection carries one request —
a JSON object of at most :data:`MAX_REQUEST_BYTES` ending with a newline (or
EOF) within :data:`REQUEST_TIMEOUT_SECS` — and gets one JSON answer, then is
closed. ``{"cmd": "status"}`` is answered by the handler registered for
``status``; the handlers live in :mod:`sysops_agent.operator`.

If the socket cannot be created (a read-only data directory, a path too long
for ``sun_path``) the daemon runs on without it and says so once.
:func:`request` is the client side used by ``status``, ``silence`` and ``ack``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
from typing import Any, Callable, Dict, Optional

from sysops_agent.clock import Clock, race

log = logging.getLogger("sysops_agent.control")

SOCKET_NAME = "control.sock"
#: a request larger than this is refused (the largest real one, a silence, is < 1 KiB)
MAX_REQUEST_BYTES = 64 * 1024
#: a client has this long to send its request
REQUEST_TIMEOUT_SECS = 5.0
#: the client waits this long for an answer
CLIENT_TIMEOUT_SECS = 10.0

Handler = Callable[[Dict[str, Any]], Dict[str, Any]]


def socket_path(data_dir: str) -> str:
    return os.path.join(data_dir, SOCKET_NAME)


def peer_allowed(peer_uid: int, own_uid: int) -> bool:
    """Only the agent's own user and root may talk to the agent."""
    return peer_uid == own_uid or peer_uid == 0


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class ControlServer:
    def __init__(self, path: str, handlers: Dict[str, Handler], clock: Clock) -> None:
        self.path = path
        self.handlers = handlers
        self.clock = clock
        self.own_uid = os.geteuid()
        self._server: Optional[asyncio.AbstractServer] = None
        self.refused = 0

    async def start(self) -> bool:
        """Listen; False (logged once) if the socket cannot be created."""
        try:
            sock = self._bind()
        except OSError as e:
            log.warning(
                "control socket %s not created (%s): status, silence and ack cannot reach "
                "this agent; it runs on without them",
                self.path,
                e.strerror or e,
            )
            return False
        self._server = await asyncio.start_unix_server(self._serve, sock=sock)
        log.info("control socket: %s", self.path)
        return True

    def _bind(self) -> socket.socket:
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(st.st_mode):
                raise OSError(f"{self.path} exists and is not a socket")
            os.unlink(self.path)  # left by an agent that died (the PID file keeps out a live one)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # created 0600: no window in which others may connect
        try:
            sock.bind(self.path)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(16)
        sock.setblocking(False)
        return sock

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            answer = await self._answer(reader, writer)
            writer.write(json.dumps(answer, default=str).encode() + b"\n")
            await race(self.clock, writer.drain(), REQUEST_TIMEOUT_SECS)
        except Exception as e:  # one bad client must never hurt the daemon
            log.debug("control connection: %r", e)
        finally:
            writer.close()

    async def _answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Dict[str, Any]:
        sock = writer.get_extra_info("socket")
        uid = peer_uid(sock) if sock is not None else -1
        # Read (bounded) even a refused peer's request: closing with unread data would
        # reset the connection and lose the answer that says why.
        done, data = await race(self.clock, read_request(reader), REQUEST_TIMEOUT_SECS)
        if not peer_allowed(uid, self.own_uid):
            self.refused += 1
            log.warning("control socket: refused a request from uid %d", uid)
            return {"ok": False, "error": f"uid {uid} may not control this agent"}
        if not done or data is None:
            return {"ok": False, "error": f"no request within {REQUEST_TIMEOUT_SECS:g} s"}
        return self.dispatch(data)

    def dispatch(self, data: bytes) -> Dict[str, Any]:
        """The answer to one raw request."""
        if len(data) > MAX_REQUEST_BYTES:
            return {"ok": False, "error": f"request larger than {MAX_REQUEST_BYTES} bytes"}
        try:
            req = json.loads(data.decode("utf-8"))
        except ValueError:
            return {"ok": False, "error": "the request is not JSON"}
        if not isinstance(req, dict):
            return {"ok": False, "error": "the request is not a JSON object"}
        handler = self.handlers.get(str(req.get("cmd", "")))
        if handler is None:
            known = ", ".join(sorted(self.handlers))
            return {"ok": False, "error": f"unknown cmd {req.get('cmd')!r} (known: {known})"}
        try:
            answer = handler(req)
        except (KeyError, ValueError) as e:
            return {"ok": False, "error": str(e).strip("'\"")}
        except Exception as e:  # a bug in a handler: answer, log, and serve on
            log.exception("control request %r failed", req.get("cmd"))
            return {"ok": False, "error": f"internal error: {e!r}"}
        answer.setdefault("ok", True)
        return answer


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Bytes up to the first newline or EOF; stops reading past :data:`MAX_REQUEST_BYTES`."""
    buf = b""
    while b"\n" not in buf and len(buf) <= MAX_REQUEST_BYTES:
        chunk = await reader.read(MAX_REQUEST_BYTES + 1 - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0] if b"\n" in buf else buf


class ControlUnavailable(Exception):
    """No daemon answers on the socket (not running, or no socket)."""


def request(path: str, req: Dict[str, Any], timeout: float = CLIENT_TIMEOUT_SECS) -> Dict[str, Any]:
    """Send ``req`` to the daemon at ``path``; its answer. ControlUnavailable if none answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except FileNotFoundError:
            raise ControlUnavailable(f"no agent is running (no socket {path})") from None
        except ConnectionRefusedError:
            raise ControlUnavailable(f"no agent answers on {path}") from None
        except PermissionError:
            raise ControlUnavailable(
                f"permission denied on {path}: run as the agent's user or root"
            ) from None
        sock.sendall(json.dumps(req).encode() + b"\n")
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except socket.timeout:
        raise ControlUnavailable(f"the agent did not answer within {timeout:g} s") from None
    except OSError as e:
        raise ControlUnavailable(f"{path}: {e.strerror or e}") from None
    finally:
        sock.close()
    try:
        answer = json.loads(b"".join(chunks).decode("utf-8"))
    except ValueError:
        raise ControlUnavailable(f"the agent's answer on {path} is not JSON") from None
    if not isinstance(answer, dict):
        raise ControlUnavailable(f"the agent's answer on {path} is not a JSON object")
    return answer
