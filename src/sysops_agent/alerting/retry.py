"""Stage 5 of the alert pipeline: send with retries, backoff and a per-request timeout.

What is retryable is the channel's call: it raises a
:class:`~sysops_agent.alerting.channel.ChannelError` with ``retryable`` and
``retry_after`` (the HTTP channels classify statuses in
:func:`sysops_agent.channels.http.classify_status`).

- :func:`retry_delay` is the pure retry decision: after a failed attempt,
  how long to wait before the next one, or ``None`` to give up. A platform's
  ``Retry-After`` (carried in :attr:`ChannelError.retry_after`) wins over the
  exponential backoff (``base * 2**n``, capped); a ``Retry-After`` longer than
  :data:`MAX_RETRY_AFTER_SECS` gives up instead of blocking the channel.
- :func:`send_with_retry` is the effect: it calls ``channel.send`` at most
  ``1 + retries`` times. Every wait — the backoff and the timeout — goes
  through the :class:`Clock`, so tests run it on virtual time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Optional, Sequence, Tuple, TypeVar, cast

from sysops_agent.alerting.channel import Channel, ChannelError
from sysops_agent.clock import Clock, race
from sysops_agent.model import Alert

T = TypeVar("T")

DEFAULT_RETRIES = 3
DEFAULT_BASE_DELAY_SECS = 1.0
DEFAULT_MAX_DELAY_SECS = 60.0
#: A platform asking us to wait longer than this is not waited for: the
#: attempt fails, so that one channel's queue does not stall for hours.
MAX_RETRY_AFTER_SECS = 300.0


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """Exponential backoff after ``failures`` (1, 2, …) failed attempts."""
    return float(min(cap, base * (2 ** max(0, failures - 1))))


def retry_delay(
    failures: int,
    error: ChannelError,
    retries: int,
    base: float = DEFAULT_BASE_DELAY_SECS,
    cap: float = DEFAULT_MAX_DELAY_SECS,
) -> Optional[float]:
    """Seconds to wait before attempt ``failures + 1``, or None to give up."""
    if not error.retryable or failures > retries:
        return None
    if error.retry_after is not None:
        if error.retry_after > MAX_RETRY_AFTER_SECS:
            return None
        return max(0.0, float(error.retry_after))
    return backoff_delay(failures, base, cap)


#: the outbox honours a platform's Retry-After up to this long
MAX_OUTBOX_RETRY_AFTER_SECS = 3600.0
#: shortest wait between two attempts at one outbox message
MIN_OUTBOX_DELAY_SECS = 0.1


def outbox_retry_delay(attempts: int, error: ChannelError, base: float, cap: float) -> float:
    """Wait before the next attempt at an outbox message that failed ``attempts`` times.

    The platform's ``Retry-After`` wins (up to :data:`MAX_OUTBOX_RETRY_AFTER_SECS`);
    otherwise capped exponential backoff. The message is never given up here:
    the outbox gives it up when it is older than its maximum age.
    """
    if error.retry_after is not None:
        delay = min(MAX_OUTBOX_RETRY_AFTER_SECS, float(error.retry_after))
    else:
        delay = backoff_delay(attempts, base, cap)
    return max(MIN_OUTBOX_DELAY_SECS, delay)


@dataclass(frozen=True)
class SendResult:
    ok: bool
    attempts: int
    #: the last error (already redacted by the channel), None on success
    error: Optional[str] = None
    status: Optional[int] = None
    #: the waits between attempts, in order
    delays: Tuple[float, ...] = ()


async def call_with_timeout(
    clock: Clock, make: Callable[[], Awaitable[T]], timeout: Optional[float]
) -> T:
    """Await ``make()`` but give up after ``timeout`` seconds of ``clock`` time."""
    if timeout is None:
        return await make()
    finished, result = await race(clock, make(), timeout)
    if not finished:
        raise ChannelError(f"no answer within {timeout:g} s", retryable=True)
    return cast(T, result)


async def send_with_retry(
    channel: Channel,
    alerts: Sequence[Alert],
    clock: Clock,
    *,
    retries: int = DEFAULT_RETRIES,
    base_delay: float = DEFAULT_BASE_DELAY_SECS,
    max_delay: float = DEFAULT_MAX_DELAY_SECS,
    timeout: Optional[float] = None,
    mention: bool = False,
) -> SendResult:
    """Deliver ``alerts`` through ``channel``, retrying what may succeed later.

    ``mention`` is passed to every attempt (the pipeline's decision, see
    :func:`sysops_agent.alerting.route.wants_mention`).
    """
    delays: list[float] = []
    failures = 0
    while True:
        try:
            await call_with_timeout(clock, lambda: channel.send(alerts, mention=mention), timeout)
            return SendResult(True, failures + 1, delays=tuple(delays))
        except ChannelError as exc:
            error = exc
        except Exception as exc:  # a bug in a channel must not kill the sender
            error = ChannelError(f"{type(exc).__name__}: {exc}", retryable=False)
        failures += 1
        delay = retry_delay(failures, error, retries, base_delay, max_delay)
        if delay is None:
            message = str(error)
            if error.retry_after is not None and error.retry_after > MAX_RETRY_AFTER_SECS:
                message += f" (asked to wait {error.retry_after:g} s: giving up)"
            return SendResult(False, failures, message, error.status, tuple(delays))
        delays.append(delay)
        await clock.sleep(delay)
