"""systemd's notification protocol (sd_notify(3)), by hand: no dependency.

systemd passes ``NOTIFY_SOCKET``, the path of a ``AF_UNIX``/``SOCK_DGRAM``
socket (``@name`` for one in the abstract namespace), and for a service with
``WatchdogSec=`` also ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, the pid meant).
A notification is one datagram of newline-separated ``KEY=VALUE`` lines. When
``NOTIFY_SOCKET`` is unset (a terminal, a ``Type=simple`` unit, the tests)
everything here does nothing.

What the daemon tells systemd (``Type=notify`` in deploy/sysops-agent.service):

- ``READY=1`` once every collector has run once, so ``systemctl start``
  returns when the agent really collects, and units ordered after it see data;
- ``WATCHDOG=1`` every ``WATCHDOG_USEC / 2`` from a task on the event loop:
  a loop that is stuck (a blocking call, a busy coroutine) stops the pings and
  systemd restarts the service (``Restart=on-failure``);
- ``STATUS=`` with the number of firing alerts (``systemctl status`` shows it);
- ``STOPPING=1`` when the shutdown begins.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING, Dict, Mapping, Optional, Tuple

from sysops_agent.model import AlertState, Labels

if TYPE_CHECKING:
    from sysops_agent.clock import Clock
    from sysops_agent.model import Alert

log = logging.getLogger("sysops_agent.sdnotify")

#: log alerts are events (firing, never resolved): counted apart from the firing ones
LOG_ANALYZER = "log"


def socket_address(value: str) -> str:
    """NOTIFY_SOCKET as ``socket.connect`` takes it: ``@x`` is abstract (``\\0x``)."""
    return "\0" + value[1:] if value.startswith("@") else value


def watchdog_interval(environ: Mapping[str, str], pid: Optional[int] = None) -> Optional[float]:
    """Seconds between two WATCHDOG=1 pings (half of WATCHDOG_USEC), or None when the
    watchdog is off or meant for another process (WATCHDOG_PID)."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    meant_for = environ.get("WATCHDOG_PID")
    if meant_for and meant_for != str(os.getpid() if pid is None else pid):
        return None
    return usec / 2 / 1e6


class Notifier:
    """Sends notifications to ``NOTIFY_SOCKET``; every method is a no-op without it."""

    def __init__(self, address: Optional[str]) -> None:
        self.address = address or None
        self._sock: Optional[socket.socket] = None
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; False when off or the send failed."""
        if self.address is None:
            return False
        data = "\n".join(assignments).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(data, socket_address(self.address))
        except OSError as e:
            if not self._warned:  # once: a vanished socket must not flood the log
                self._warned = True
                log.warning("systemd notification to %s failed: %s", self.address, e)
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class SystemdService:
    """The daemon's side of ``Type=notify``: readiness, watchdog pings and STATUS=."""

    def __init__(self, notifier: Notifier, watchdog_secs: Optional[float], clock: Clock) -> None:
        self.notifier = notifier
        self.watchdog_secs = watchdog_secs
        self.clock = clock
        self.ready = False
        #: (analyzer, metric, labels) -> severity of every firing alert
        self._firing: Dict[Tuple[str, str, Labels], str] = {}
        self.log_events = 0
        self._status = ""
        self._stopped = False

    @classmethod
    def from_environ(
        cls, clock: Clock, environ: Optional[Mapping[str, str]] = None
    ) -> SystemdService:
        env = os.environ if environ is None else environ
        return cls(Notifier.from_environ(env), watchdog_interval(env), clock)

    def status_text(self) -> str:
        n = len(self._firing)
        text = f"{n} alert{'' if n == 1 else 's'} firing"
        if n:
            by: Dict[str, int] = {}
            for severity in self._firing.values():
                by[severity] = by.get(severity, 0) + 1
            text += " (" + ", ".join(f"{c} {s}" for s, c in sorted(by.items())) + ")"
        if self.log_events:
            text += f"; {self.log_events} log event{'' if self.log_events == 1 else 's'}"
        return text

    def observe(self, alert: Alert) -> None:
        """Count an alert notification the daemon queued; update STATUS= if it changed."""
        if not self.notifier.enabled:
            return
        if alert.analyzer == LOG_ANALYZER:
            self.log_events += 1
        else:
            key = (alert.analyzer, alert.metric, alert.labels)
            if alert.state is AlertState.RESOLVED:
                self._firing.pop(key, None)
            else:
                self._firing[key] = alert.severity.label
        if self.ready and not self._stopped:
            self._send_status()

    def _send_status(self) -> None:
        text = self.status_text()
        if text != self._status:
            self._status = text
            self.notifier.notify(f"STATUS={text}")

    async def run(self, first_cycle: asyncio.Event) -> None:
        """READY=1 once ``first_cycle`` is set; then WATCHDOG=1 every half watchdog period."""
        if not self.notifier.enabled:
            return
        self.notifier.notify("STATUS=starting: first collection")
        await first_cycle.wait()
        self.ready = True
        self._status = self.status_text()
        self.notifier.notify("READY=1", f"STATUS={self._status}")
        if self.watchdog_secs is None:
            return
        while not self._stopped:
            self.notifier.notify("WATCHDOG=1")
            await self.clock.sleep(self.watchdog_secs)

    def stopping(self) -> None:
        """STOPPING=1, the last notification: the socket is closed after it."""
        if self._stopped:
            return
        self._stopped = True
        self.notifier.notify("STOPPING=1", "STATUS=stopping")
        self.notifier.close()
