"""The :class:`Channel` protocol: one module per destination, registered by name."""

from __future__ import annotations

from typing import Protocol, Sequence

from sysops_agent.model import Alert


class ChannelError(Exception):
    """Sending failed. ``retryable`` says whether trying again may help (429, 5xx, network)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class Channel(Protocol):
    name: str
    #: True if ``send`` can deliver several alerts as one message
    supports_batch: bool

    async def send(self, alerts: Sequence[Alert]) -> None:
        """Deliver ``alerts`` (one unless ``supports_batch``); raise :class:`ChannelError`."""

    async def aclose(self) -> None:
        """Release connections."""
