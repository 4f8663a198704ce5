"""Generic webhook channel: the SPEC §6 JSON, one request per alert.

The body is exactly :meth:`Alert.to_json_obj` — ``hostname``, ``timestamp``
(ISO-8601 UTC), ``severity``, ``metric``, ``value``, ``threshold``,
``message``, ``labels``, ``duration_secs``, ``analyzer``, ``state``, ``id``.
Receivers of this format expect *one object per request*, so the channel
does not batch (``supports_batch = False``): the alert manager hands it one
alert at a time, and retries resend exactly that alert.

Method (POST/PUT/PATCH) and headers come from the config; ``${ENV}`` in
header values was already expanded when the config was loaded, and header
values are treated as secrets (redacted from every error). Any 2xx is
success; the usual classifier decides the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from sysops_agent.channels.base import SEVERITIES, ChannelContext, missing
from sysops_agent.channels.http import HttpChannel
from sysops_agent.clock import Clock
from sysops_agent.model import Alert
from sysops_agent.redact import Redactor
from sysops_agent.schema import Problem, opt


@dataclass(frozen=True)
class WebhookChannelConfig:
    enabled: bool = opt(False)
    url: str = opt("", secret=True)
    method: str = opt("POST", choices=("POST", "PUT", "PATCH"))
    headers: Dict[str, str] = opt(factory=dict, secret=True, help="values may use ${ENV}")
    min_severity: str = opt("warn", choices=SEVERITIES)

    def problems(self, path: str) -> List[Problem]:
        return missing(self, path, ["url"])


class WebhookChannel(HttpChannel[WebhookChannelConfig]):
    name = "webhook"
    supports_batch = False

    def __init__(
        self,
        config: WebhookChannelConfig,
        *,
        redactor: Optional[Redactor] = None,
        timeout: float = 10.0,
        clock: Optional[Clock] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(config, redactor=redactor, timeout=timeout, clock=clock, **kwargs)
        headers: Dict[str, str] = {"Content-Type": "application/json"}
        for key, value in config.headers.items():
            # later keys win case-insensitively (a configured Content-Type replaces ours)
            for existing in [k for k in headers if k.lower() == key.lower()]:
                del headers[existing]
            headers[key] = value
        self.headers = headers

    def secret_values(self, config: WebhookChannelConfig) -> List[str]:
        return [config.url, *config.headers.values()]

    async def send(self, alerts: Sequence[Alert], *, mention: bool = False) -> None:
        for alert in alerts:
            response = await self.request(
                self.config.method.upper(),
                self.config.url,
                json=alert.to_json_obj(),
                headers=self.headers,
            )
            self.check(response)


def create(cfg: WebhookChannelConfig, ctx: ChannelContext) -> WebhookChannel:
    return WebhookChannel(
        cfg, redactor=ctx.redactor, timeout=ctx.send_timeout_secs, clock=ctx.clock
    )
