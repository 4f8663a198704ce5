"""The bounded queues between the daemon's stages (SPEC §2): full means drop the OLDEST.

Fresh data matters more than old data for alerting, and a producer (a
collector thread's hand-off, an analyzer, the log watcher) must never block
on a slow consumer. :class:`DropOldestQueue` is the one implementation: drops
are counted (``dropped``, exported as a self-metric) and logged at most once
per ``warn_interval`` seconds (10 minutes) with the count since the last line:
the first drop is said at once, the drops after it in one line when the interval
has passed (on the next put or :meth:`report`, which the daemon calls every
housekeeping tick), never one line per drop.

* the sample queue (collectors -> storage), 10,000 samples;
* the alert queue (analyzers, log watcher -> alert manager), 1,000 alerts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Callable, Deque, Generic, Iterable, List, TypeVar

log = logging.getLogger("sysops_agent.queue")

SAMPLE_QUEUE_CAPACITY = 10_000
ALERT_QUEUE_CAPACITY = 1_000
#: at most one "Dropped N ..." line per queue this often (issue 12: a 50,000-line log
#: storm once logged 49,000 warnings)
DROP_WARN_INTERVAL = 600.0

T = TypeVar("T")


class RateLimitedWarning:
    """One warning line per ``interval`` (10 minutes) with the count since the last line.

    For "dropped", "queue full", "cannot write": ``add(n, **fields)`` counts ``n``
    occurrences; the first is logged at once, the ones after it together in one line
    once the interval has passed (at the next :meth:`add` or :meth:`report`).
    ``message`` is a :meth:`str.format` template with ``{count}`` and the fields of
    the last :meth:`add`.
    """

    def __init__(
        self,
        logger: logging.Logger,
        message: str,
        *,
        interval: float = DROP_WARN_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.message = message
        self.interval = interval
        self._monotonic = monotonic
        self._last = -float("inf")
        self._fields: dict[str, object] = {}
        #: occurrences not said yet
        self.pending = 0

    def add(self, n: int = 1, **fields: object) -> None:
        self.pending += n
        self._fields = fields
        self.report()

    def report(self) -> None:
        """Log what is pending, unless a line was logged less than ``interval`` ago."""
        if not self.pending:
            return
        now = self._monotonic()
        if now - self._last < self.interval:
            return
        self.logger.warning(self.message.format(count=self.pending, **self._fields))
        self.pending = 0
        self._last = now


class DropOldestQueue(Generic[T]):
    """A FIFO of at most ``capacity`` items; a put on a full queue drops the oldest items."""

    def __init__(
        self,
        capacity: int,
        *,
        monotonic: Callable[[], float],
        what: str = "items",
        warn_interval: float = DROP_WARN_INTERVAL,
    ) -> None:
        self.capacity = capacity
        self.what = what
        self._items: Deque[T] = deque()
        self._ready = asyncio.Event()
        self._warning = RateLimitedWarning(
            log,
            "Dropped {count} "
            + what.replace("{", "{{").replace("}", "}}")
            + " due to backpressure",
            interval=warn_interval,
            monotonic=monotonic,
        )
        #: total items dropped since start (a counter)
        self.dropped = 0

    def put(self, item: T) -> None:
        self.put_many((item,))

    def put_many(self, items: Iterable[T]) -> None:
        queue = self._items
        queue.extend(items)
        overflow = len(queue) - self.capacity
        if overflow > 0:
            for _ in range(overflow):
                queue.popleft()
            self.dropped += overflow
            self._warning.add(overflow)
        elif self._warning.pending:
            self._warning.report()
        if queue:
            self._ready.set()

    def report(self) -> None:
        """Log the drops not said yet, unless a line was logged less than the interval ago."""
        self._warning.report()

    def drain(self) -> List[T]:
        items = list(self._items)
        self._items.clear()
        self._ready.clear()
        return items

    async def wait(self) -> None:
        await self._ready.wait()

    def __len__(self) -> int:
        return len(self._items)
