"""The dead-man's switch: ``[alerting.heartbeat]`` pings a push monitor while the agent runs.

A push monitor (healthchecks.io, Uptime Kuma's "Push" monitor, Cronitor
heartbeats) alerts when the pings *stop*: a dead agent, a dead host or a
broken network path all page someone, which silence on the chat channels
never does. The agent pings ``url`` every ``interval_secs`` with GET or POST.

When the agent is *degraded* — a channel failing or disabled, alerts
dropped — the ping says so, in the convention of the chosen ``style``
(:func:`ping_url`):

- ``healthchecks`` (healthchecks.io and compatible): ``<url>`` when healthy,
  ``<url>/fail`` when degraded; a POST carries the reason as its body;
- ``uptime-kuma``: the push URL with ``status=up&msg=OK`` or
  ``status=down&msg=<reason>`` (other query parameters are kept);
- ``cronitor``: ``state=complete`` or ``state=fail&message=<reason>``;
- ``plain``: always ``<url>``; a POST body says ``ok`` or the reason.

The URL is a secret (it is the monitor's credential): it is redacted from
every log line. A failed ping is logged once per outage and never stops the
agent; the next ping is on time regardless.

This module uses :mod:`sysops_agent.httpclient` directly (imported when the
first ping is sent; redirects followed), not
:class:`~sysops_agent.channels.http.HttpChannel`: a heartbeat is not a
channel — it carries no alerts and has no lane. Its config class,
:class:`HeartbeatConfig`, lives with the pipeline's keys in
:mod:`sysops_agent.alerting.config` (``[alerting.heartbeat]`` is part of
``[alerting]``), hence that import.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sysops_agent.alerting.config import HeartbeatConfig
from sysops_agent.channels.http import USER_AGENT
from sysops_agent.clock import Clock
from sysops_agent.redact import Redactor

if TYPE_CHECKING:
    from sysops_agent.httpclient import AsyncClient, Transport

log = logging.getLogger("sysops_agent.heartbeat")

#: a reason longer than this is cut (monitors show a short status line)
MAX_REASON = 200
#: one ping may take at most this long
PING_TIMEOUT_SECS = 10.0


def _with_query(url: str, params: List[Tuple[str, str]]) -> str:
    parts = urlsplit(url)
    names = {k for k, _ in params}
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names]
    return urlunsplit(parts._replace(query=urlencode(query + params)))


def ping_url(url: str, style: str, problem: Optional[str]) -> str:
    """The URL to ping: healthy when ``problem`` is None, degraded otherwise."""
    reason = (problem or "")[:MAX_REASON]
    if style == "healthchecks":
        if problem is None:
            return url
        parts = urlsplit(url)
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/fail"))
    if style == "uptime-kuma":
        if problem is None:
            return _with_query(url, [("status", "up"), ("msg", "OK")])
        return _with_query(url, [("status", "down"), ("msg", reason)])
    if style == "cronitor":
        if problem is None:
            return _with_query(url, [("state", "complete")])
        return _with_query(url, [("state", "fail"), ("message", reason)])
    return url


class Heartbeat:
    """Pings the monitor every ``interval_secs``; ``health`` says what is wrong (None = ok)."""

    def __init__(
        self,
        config: HeartbeatConfig,
        clock: Clock,
        health: Callable[[], Optional[str]],
        *,
        redactor: Optional[Redactor] = None,
        transport: Optional[Transport] = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.health = health
        self.redact = redactor if redactor is not None else Redactor()
        self.redact.add(config.url)
        self._transport = transport
        self._client: Optional[AsyncClient] = None
        self._failing = False
        #: pings the monitor accepted / that failed
        self.sent = 0
        self.failed = 0

    async def ping(self) -> bool:
        """One ping now; True if the monitor answered 2xx."""
        from sysops_agent import httpclient

        problem = self.health()
        cfg = self.config
        url = ping_url(cfg.url, cfg.style, problem)
        if self._client is None:
            self._client = httpclient.AsyncClient(
                timeout=PING_TIMEOUT_SECS,
                headers={"User-Agent": USER_AGENT},
                follow_redirects=True,
                transport=self._transport,
            )
        try:
            if cfg.method == "POST":
                body = ("ok" if problem is None else problem).encode()
                response = await self._client.post(url, content=body)
            else:
                response = await self._client.get(url)
            ok = response.is_success
            error = f"HTTP {response.status_code}"
        except (httpclient.HttpError, ValueError, OSError) as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"
        if ok:
            self.sent += 1
            if self._failing:
                log.info("heartbeat: the monitor answers again")
            self._failing = False
            return True
        self.failed += 1
        if not self._failing:
            log.warning("heartbeat: ping failed: %s", self.redact(error))
        self._failing = True
        return False

    async def run(self) -> None:
        """Ping at once, then every ``interval_secs`` (until cancelled)."""
        while True:
            started = self.clock.monotonic()
            try:
                await self.ping()
            except Exception as exc:  # never let the switch die: silence would page
                log.warning("heartbeat: %s", self.redact(str(exc)))
            spent = self.clock.monotonic() - started
            await self.clock.sleep(max(0.0, self.config.interval_secs - spent))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
