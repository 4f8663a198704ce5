"""What the alert pipeline needs from a destination: the :class:`Channel` protocol and :class:`ChannelError`.

These live in ``alerting/`` — the lower layer — because the pipeline (the
manager, the retry stage) drives channels, while ``channels/`` only
implements them: ``channels/`` imports this module, ``alerting/`` never
imports ``channels/``. ``channels/base.py`` re-exports both names, so a
channel module finds everything in its own package.

Everything the manager reads from a channel is declared here; there is no
``getattr`` on a channel anywhere in the pipeline.
"""

from __future__ import annotations

from typing import Optional, Protocol, Sequence

from sysops_agent.model import Alert, Severity


class ChannelError(Exception):
    """Sending failed. ``retryable`` says whether trying again may help (429, 5xx, network).

    ``retry_after`` is the wait the platform asked for (seconds), ``status`` the
    HTTP or SMTP status code when there is one. The message is already redacted.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: Optional[float] = None,
        status: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class Channel(Protocol):
    """One destination (Slack, e-mail, syslog, …), as the alert manager sees it."""

    #: the lane name (``[alerting.<name>]``)
    name: str
    #: True if ``send`` can deliver several alerts as one message
    supports_batch: bool
    #: alerts below this severity are not routed to the channel
    min_severity: Severity
    #: False for a channel that throttles by itself (Alertmanager): the lane has no rate limiter
    rate_limited: bool
    #: why the channel stopped sending for good (None while it works); sends then fail at once
    disabled: Optional[str]

    async def send(self, alerts: Sequence[Alert], *, mention: bool = False) -> None:
        """Deliver ``alerts`` (one unless ``supports_batch``); raise :class:`ChannelError`.

        ``mention`` is the pipeline's decision that this message carries the
        channel's configured mention (a firing critical or emergency alert);
        channels without mentions ignore it.
        """

    async def aclose(self) -> None:
        """Release connections."""
