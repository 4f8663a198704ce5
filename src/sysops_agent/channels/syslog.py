"""The syslog channel: one datagram per alert to ``/dev/log``, a unix socket or UDP.

The stdlib ``syslog`` module is not used: it is process-global (one ident and
facility for the whole process) and can only reach the local daemon. Instead
the channel writes the line itself to a non-blocking datagram socket:

- ``address = ""``: the local daemon's ``/dev/log`` (journald or rsyslog);
- ``address = "/path"``: another unix datagram socket;
- ``address = "host:port"`` (or ``[v6]:port``, port 514 by default): UDP.

The unix socket is not connected, so a restarted syslog daemon (which creates
a new ``/dev/log``) is reached by the next alert without reconnecting.

Line formats (``format``): ``rfc3164`` — ``<PRI>Mmm dd hh:mm:ss [host ]tag[pid]: msg``
(what ``syslog(3)`` writes; the host part only for UDP, the local daemon adds
its own) — or ``rfc5424`` — ``<PRI>1 TIMESTAMP HOST sysops-agent PID - - msg``.
``PRI = facility * 8 + severity`` with the alert severity mapped as
info→info(6), warn→warning(4), critical→crit(2), emergency→emerg(0), and any
resolved notice→notice(5). Alert text is made one line (control characters
become spaces) and the datagram is cut to ``max_length`` bytes on a UTF-8
character boundary.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Dict, Optional, Sequence, Tuple, Union

from sysops_agent.alerting.text import value_and_threshold
from sysops_agent.channels.base import SEVERITIES, ChannelContext, ChannelError, severity_of
from sysops_agent.clock import Clock, SystemClock
from sysops_agent.model import Alert, AlertState, Severity
from sysops_agent.schema import opt

#: syslog facility names and codes (RFC 5424 §6.2.1)
SYSLOG_FACILITY_CODES: Dict[str, int] = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}
SYSLOG_FACILITIES = tuple(SYSLOG_FACILITY_CODES)


def split_syslog_address(value: str) -> Tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``host`` (port 514) -> (host, port); raises ValueError."""
    host, port = value, "514"
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError("missing ']' after the IPv6 address")
        host, rest = value[1:end], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError("expected ':port' after ']'")
            port = rest[1:]
    elif value.count(":") == 1:
        host, port = value.split(":")
    if not host or any(c.isspace() for c in host):
        raise ValueError("empty host or host with spaces")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"port {port!r} is not a number from 1 to 65535")
    return host, int(port)


def check_syslog_address(value: str) -> Optional[str]:
    if not value or value.startswith("/"):
        return None
    try:
        split_syslog_address(value)
    except ValueError as e:
        return f"{value!r} is neither a unix socket path (/dev/log) nor host:port ({e})"
    return None


@dataclass(frozen=True)
class SyslogChannelConfig:
    enabled: bool = opt(False)
    address: str = opt(
        "",
        validate=check_syslog_address,
        help="empty = local /dev/log; a unix socket path, or host:port (UDP, port default 514)",
    )
    facility: str = opt("daemon", choices=SYSLOG_FACILITIES)
    format: str = opt(
        "rfc3164",
        choices=("rfc3164", "rfc5424"),
        help="rfc3164 (classic BSD line, what /dev/log expects) or rfc5424",
    )
    max_length: int = opt(2048, min=480, max=8192, help="bytes per datagram, longer text is cut")
    min_severity: str = opt("warn", choices=SEVERITIES)


TAG = "sysops-agent"
DEFAULT_SOCKET = "/dev/log"

#: syslog severities (RFC 5424 §6.2.1)
EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = range(8)
SEVERITY_CODES = {
    Severity.INFO: INFO,
    Severity.WARN: WARNING,
    Severity.CRITICAL: CRIT,
    Severity.EMERGENCY: EMERG,
}
RESOLVED_CODE = NOTICE

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Destination = Union[str, Tuple[str, int]]


def priority(facility: str, alert: Alert) -> int:
    """``PRI`` of ``alert``: facility code * 8 + mapped severity."""
    code = RESOLVED_CODE if alert.state is AlertState.RESOLVED else SEVERITY_CODES[alert.severity]
    return SYSLOG_FACILITY_CODES[facility] * 8 + code


def clean_text(text: str) -> str:
    """One line: control characters (CR, LF, NUL, ...) and U+2028/9 become spaces, runs collapsed."""
    import unicodedata

    out = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    return " ".join(out.split())


def _header_token(text: str, limit: int) -> str:
    """A header field without spaces (hostname): printable ASCII only, else ``-``."""
    token = "".join(ch for ch in text if "!" <= ch <= "~")[:limit]
    return token or "-"


def alert_text(alert: Alert) -> str:
    state = "RESOLVED" if alert.state is AlertState.RESOLVED else alert.severity.label.upper()
    labels = ",".join(f"{k}={v}" for k, v in alert.labels)
    where = f"{alert.metric}{{{labels}}}" if labels else alert.metric
    return clean_text(
        f"{state} {where} {value_and_threshold(alert)} "
        f"host={alert.hostname}: {alert.message} (analyzer={alert.analyzer} id={alert.id})"
    )


def _cut_utf8(data: bytes, limit: int) -> bytes:
    if len(data) <= limit:
        return data
    ellipsis = "…".encode()
    cut = data[: limit - len(ellipsis)]
    # drop a partial multi-byte character at the end
    return cut.decode("utf-8", errors="ignore").encode() + ellipsis


def format_line(
    alert: Alert,
    *,
    facility: str,
    fmt: str,
    now: float,
    hostname: Optional[str],
    pid: int,
    max_length: int,
) -> bytes:
    """The datagram for ``alert``; ``hostname`` None leaves it out (RFC 3164 to the local daemon)."""
    pri = priority(facility, alert)
    text = alert_text(alert)
    if fmt == "rfc5424":
        stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        stamp = stamp[:23] + "Z"  # milliseconds
        host = _header_token(hostname or "", 255)
        head = f"<{pri}>1 {stamp} {host} {TAG} {pid} - - "
    else:
        t = time.localtime(now)
        stamp = (
            f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        )
        host = f"{_header_token(hostname, 255)} " if hostname is not None else ""
        head = f"<{pri}>{stamp} {host}{TAG}[{pid}]: "
    return _cut_utf8((head + text).encode("utf-8"), max_length)


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class SyslogChannel:
    name = "syslog"
    #: one syslog record per alert: a grouped record would be one huge line
    supports_batch = False
    rate_limited = True

    def __init__(
        self,
        cfg: SyslogChannelConfig,
        *,
        clock: Optional[Clock] = None,
        timeout: float = 5.0,
        hostname: Optional[str] = None,
    ) -> None:
        self._cfg = cfg
        self._clock: Clock = clock or SystemClock()
        self._timeout = timeout
        self._hostname = hostname
        self.min_severity = severity_of(cfg.min_severity)
        self.disabled: Optional[str] = None
        self._unix: Optional[str] = None
        self._udp: Optional[Tuple[str, int]] = None
        if not cfg.address or cfg.address.startswith("/"):
            self._unix = cfg.address or DEFAULT_SOCKET
        else:
            self._udp = split_syslog_address(cfg.address)
        self._sock: Optional[socket.socket] = None
        self._dest: Optional[Destination] = None

    @property
    def destination(self) -> str:
        if self._unix is not None:
            return self._unix
        assert self._udp is not None
        return f"{self._udp[0]}:{self._udp[1]} (UDP)"

    async def _open(self) -> Tuple[socket.socket, Destination]:
        if self._sock is not None and self._dest is not None:
            return self._sock, self._dest
        if self._unix is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            dest: Destination = self._unix
        else:
            assert self._udp is not None
            host, port = self._udp
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            except OSError as e:
                raise ChannelError(f"syslog: cannot resolve {host}: {e}", retryable=True) from None
            family, _, proto, _, addr = infos[0]
            sock = socket.socket(family, socket.SOCK_DGRAM, proto)
            dest = (str(addr[0]), int(addr[1]))
        sock.setblocking(False)
        self._sock, self._dest = sock, dest
        return sock, dest

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._dest = None

    async def _sendto(self, sock: socket.socket, data: bytes, dest: Destination) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while True:
            try:
                sock.sendto(data, dest)
                return
            except BlockingIOError:
                # The receiver's queue is full (a busy journald): wait until writable.
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ChannelError(
                    f"syslog: {self.destination} is not accepting messages (queue full)",
                    retryable=True,
                )
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_writer(sock.fileno(), _set_done, ready)
            try:
                await asyncio.wait_for(ready, remaining)
            except asyncio.TimeoutError:
                pass
            finally:
                loop.remove_writer(sock.fileno())

    async def send(self, alerts: Sequence[Alert], *, mention: bool = False) -> None:
        cfg = self._cfg
        sock, dest = await self._open()
        for alert in alerts:
            host = self._hostname or alert.hostname
            data = format_line(
                alert,
                facility=cfg.facility,
                fmt=cfg.format,
                now=self._clock.time(),
                hostname=host if self._udp is not None or cfg.format == "rfc5424" else None,
                pid=os.getpid(),
                max_length=cfg.max_length,
            )
            try:
                await self._sendto(sock, data, dest)
            except ChannelError:
                raise
            except (FileNotFoundError, ConnectionRefusedError) as e:
                self._close()
                raise ChannelError(
                    f"syslog: no syslog daemon listening on {self.destination}: {e.strerror}",
                    retryable=True,
                ) from None
            except OSError as e:
                self._close()
                raise ChannelError(
                    f"syslog: cannot send to {self.destination}: {e.strerror or e}",
                    retryable=True,
                ) from None

    async def aclose(self) -> None:
        self._close()


def create(cfg: SyslogChannelConfig, ctx: ChannelContext) -> SyslogChannel:
    return SyslogChannel(cfg, clock=ctx.clock, timeout=ctx.send_timeout_secs)
