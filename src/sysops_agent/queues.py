"""The bounded queues between the daemon's stages (SPEC §2): full means drop the OLDEST.

Fresh data matters more than old data for alerting, and a producer (a
collector thread's hand-off, an analyzer, the log watcher) must never block
on a slow consumer. :class:`DropOldestQueue` is the one implementation: drops
are counted (``dropped``, exported as a self-metric) and logged at most once
per ``warn_interval`` seconds (10 minutes) with the count since the last line:
the first drop is said at once, the drops after it in one line when the interval
has passed (on the next put or :meth:`DropOldestQueue.report`, which the daemon
calls every housekeeping tick), never one line per drop.

* the sample queue (collectors -> storage), 10,000 samples;
* the alert queue (analyzers, log watcher -> alert manager), 1,000 alerts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Callable, Deque, Generic, Iterable, List, TypeVar

from sysops_agent.throttle import WARN_EVERY_SECS, ThrottledWarnings

log = logging.getLogger("sysops_agent.queue")

SAMPLE_QUEUE_CAPACITY = 10_000
ALERT_QUEUE_CAPACITY = 1_000
T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    """A FIFO of at most ``capacity`` items; a put on a full queue drops the oldest items."""

    def __init__(
        self,
        capacity: int,
        *,
        monotonic: Callable[[], float],
        what: str = "items",
        warn_interval: float = WARN_EVERY_SECS,
    ) -> None:
        self.capacity = capacity
        self.what = what
        self._items: Deque[T] = deque()
        self._ready = asyncio.Event()
        self._warn = ThrottledWarnings(log, monotonic=monotonic, every=warn_interval)
        self._unreported = 0
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
            self._dropped(overflow)
        elif self._unreported:
            self.report()
        if queue:
            self._ready.set()

    def _dropped(self, n: int) -> None:
        self.dropped += n
        self._unreported += n
        if self._warn.warning(
            "dropped",
            "Dropped %d %s due to backpressure",
            self._unreported,
            self.what,
            count=False,
        ):
            self._unreported = 0

    def report(self) -> None:
        """Say the drops not said yet, unless a line was logged less than the interval ago."""
        if self._unreported:
            self._dropped(0)

    def drain(self) -> List[T]:
        items = list(self._items)
        self._items.clear()
        self._ready.clear()
        return items

    async def wait(self) -> None:
        await self._ready.wait()

    def __len__(self) -> int:
        return len(self._items)
