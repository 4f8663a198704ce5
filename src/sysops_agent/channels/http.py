"""Shared plumbing of the HTTP channels (Discord, Slack, Telegram, webhook).

- One :class:`sysops_agent.httpclient.AsyncClient` per channel (keep-alive
  per origin), created on first use, with the ``send_timeout_secs`` timeout
  (connect, read and total); closed by ``aclose``.
- Every failure becomes a :class:`ChannelError` whose message is redacted:
  the client's errors name no URL (a webhook URL *is* the secret), they are
  re-raised ``from None`` with a redacted text anyway, and response bodies are
  redacted and shortened too.
- :func:`classify_status` is the one status classifier of every HTTP channel:
  2xx ok; 429 and 5xx retryable; every other status final (a 4xx will not get
  better by repeating it; 1xx/3xx are unexpected here). A status in a channel's
  :attr:`HttpChannel.disable_on` (e.g. Discord's 404 for a deleted webhook)
  disables the channel: one loud error, then every later send fails at once
  without a request, until the agent restarts or reloads.
- :func:`parse_retry_after` reads the wait a platform asks for: the
  ``Retry-After`` header (seconds or an HTTP date) first, then the JSON body's
  ``retry_after`` (Discord) or ``parameters.retry_after`` (Telegram).

The client is imported when a channel is created, not when this module is
imported: the registry imports every channel module for its
config class, and a host that only prints to the console pays for no HTTP
code (``tests/unit/test_import_budget.py``).
"""

from __future__ import annotations

import enum
import logging
from typing import (
    TYPE_CHECKING,
    Any,
    FrozenSet,
    Generic,
    Iterable,
    Mapping,
    Optional,
    Protocol,
    TypeVar,
)

from sysops_agent import __version__
from sysops_agent.channels.base import ChannelError, severity_of
from sysops_agent.channels.text import one_line
from sysops_agent.clock import Clock
from sysops_agent.model import Severity
from sysops_agent.redact import Redactor

if TYPE_CHECKING:
    from sysops_agent.httpclient import AsyncClient, Response, Transport

log = logging.getLogger("sysops_agent.channels")

USER_AGENT = f"sysops-agent/{__version__}"
#: how much of an error body goes into an error message
MAX_ERROR_DETAIL = 300
#: connections kept per channel: alerts go out one request at a time
POOL_CONNECTIONS = 2


class Disposition(enum.Enum):
    OK = "ok"
    RETRY = "retry"
    FINAL = "final"


def classify_status(status: int) -> Disposition:
    """2xx ok; 429 and 5xx retryable; everything else final."""
    if 200 <= status < 300:
        return Disposition.OK
    if status == 429 or 500 <= status < 600:
        return Disposition.RETRY
    return Disposition.FINAL


def parse_retry_after(
    headers: Mapping[str, str], body: Any, now: Optional[float] = None
) -> Optional[float]:
    """Seconds to wait, from the header or the JSON body; None when not given."""
    header = headers.get("retry-after") or headers.get("Retry-After")
    if header:
        header = header.strip()
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        if now is not None:
            import email.utils  # pulls in urllib.parse: only when a platform sends a date

            try:
                when = email.utils.parsedate_to_datetime(header)
            except (TypeError, ValueError, IndexError, OverflowError):  # year 99999999999
                when = None
            if when is not None and when.tzinfo is not None:
                return max(0.0, when.timestamp() - now)
    if isinstance(body, Mapping):
        for source in (body, body.get("parameters")):
            if isinstance(source, Mapping):
                value = source.get("retry_after")
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    return max(0.0, float(value))
    return None


def json_body(response: Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):  # RecursionError: a body nested thousands deep
        return None


class ChannelSection(Protocol):
    """What the base class reads from a channel's ``[alerting.<name>]`` section."""

    @property
    def min_severity(self) -> str: ...


#: the channel's own ``[alerting.<name>]`` section
C = TypeVar("C", bound=ChannelSection)


class HttpChannel(Generic[C]):
    """Base of the HTTP channels: a client, error mapping, redaction, disabling.

    A channel is built from its config section; :meth:`secret_values` names
    the values in it that must never reach a log line or an error.
    """

    name = "http"
    supports_batch = True
    rate_limited = True
    #: statuses after which the endpoint is known to be gone or refused for good
    disable_on: FrozenSet[int] = frozenset()

    def __init__(
        self,
        config: C,
        *,
        redactor: Optional[Redactor] = None,
        timeout: float = 10.0,
        clock: Optional[Clock] = None,
        transport: Optional[Transport] = None,
    ) -> None:
        # a channel is being set up (start-up): load the client now, not on the first alert
        import sysops_agent.httpclient  # noqa: F401

        self.config = config
        self.min_severity: Severity = severity_of(config.min_severity)
        self.redactor = redactor if redactor is not None else Redactor()
        for secret in self.secret_values(config):
            if secret:
                self.redactor.add(secret)
        self.timeout = float(timeout)
        self.clock = clock
        self._transport = transport
        self._client: Optional[AsyncClient] = None
        #: why the channel stopped sending (None while it works)
        self.disabled: Optional[str] = None

    def secret_values(self, config: C) -> Iterable[str]:
        """The secrets in ``config`` (webhook URLs, tokens, header values)."""
        return ()

    @property
    def client(self) -> AsyncClient:
        if self._client is None:
            from sysops_agent.httpclient import AsyncClient

            self._client = AsyncClient(
                timeout=self.timeout,
                max_idle_per_origin=POOL_CONNECTIONS,
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
                transport=self._transport,
            )
        return self._client

    def redact(self, text: str) -> str:
        return self.redactor(text)

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Response:
        """Send one request; transport failures become (redacted) ChannelErrors."""
        from sysops_agent import httpclient

        if self.disabled is not None:
            raise ChannelError(f"{self.name} is disabled: {self.disabled}", retryable=False)
        try:
            return await self.client.request(method, url, json=json, headers=headers)
        except httpclient.HttpTimeout as exc:
            raise ChannelError(
                f"{self.name}: no answer within {self.timeout:g} s ({exc})",
                retryable=True,
            ) from None
        except httpclient.InvalidURL as exc:
            raise ChannelError(
                f"{self.name}: bad URL: {self.redact(str(exc))}", retryable=False
            ) from None
        except (httpclient.InvalidRequest, ValueError) as exc:  # a header value, a NaN in JSON
            raise ChannelError(
                f"{self.name}: invalid request: {self.redact(str(exc))}", retryable=False
            ) from None
        except httpclient.HttpError as exc:
            detail = self.redact(one_line(str(exc)))[:MAX_ERROR_DETAIL]
            raise ChannelError(
                f"{self.name}: {type(exc).__name__}: {detail or 'request failed'}",
                retryable=True,
            ) from None
        except OSError as exc:  # not expected (the client wraps them): a network failure
            detail = self.redact(one_line(str(exc)))[:MAX_ERROR_DETAIL]
            raise ChannelError(
                f"{self.name}: {type(exc).__name__}: {detail or 'request failed'}",
                retryable=True,
            ) from None

    def error_detail(self, response: Response) -> str:
        """The platform's own words about a failure (channels override this)."""
        return response.text

    def check(self, response: Response) -> None:
        """Raise a ChannelError unless ``response`` is a success."""
        status = response.status_code
        disposition = classify_status(status)
        if disposition is Disposition.OK:
            return
        try:
            detail = one_line(self.error_detail(response)).strip()
        except Exception:  # a strange body must not hide the status
            detail = ""
        detail = self.redact(detail)[:MAX_ERROR_DETAIL]
        message = f"{self.name}: HTTP {status}" + (f": {detail}" if detail else "")
        if status in self.disable_on:
            self.disabled = f"HTTP {status}" + (f" ({detail})" if detail else "")
            log.error(
                "%s answered %s: the endpoint is gone or refuses us; channel disabled until "
                "the agent restarts or reloads its config (or the hourly re-probe)"
                " — check the URL/token",
                self.name,
                self.disabled,
            )
            raise ChannelError(message + " (channel disabled)", retryable=False, status=status)
        retry_after = None
        if disposition is Disposition.RETRY:
            now = self.clock.time() if self.clock is not None else None
            retry_after = parse_retry_after(response.headers, json_body(response), now)
        raise ChannelError(
            message,
            retryable=disposition is Disposition.RETRY,
            retry_after=retry_after,
            status=status,
        )

    async def post_json(self, url: str, body: Any) -> None:
        """POST ``body`` as JSON and raise a ChannelError unless the answer is a success."""
        self.check(await self.request("POST", url, json=body))

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
