"""The bounded sample queue between collectors and storage (SPEC §2).

When full it drops the **oldest** samples: fresh data matters more than old
data for alerting, and a collector must never block on a slow consumer. Drops
are counted (``agent_samples_dropped_total``) and logged at most once per
``warn_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Callable, Deque, Iterable, List

from sysops_agent.model import Sample

log = logging.getLogger("sysops_agent.queue")

SAMPLE_QUEUE_CAPACITY = 10_000


class SampleQueue:
    def __init__(
        self,
        capacity: int = SAMPLE_QUEUE_CAPACITY,
        *,
        monotonic: Callable[[], float],
        warn_interval: float = 60.0,
    ) -> None:
        self.capacity = capacity
        self._items: Deque[Sample] = deque()
        self._ready = asyncio.Event()
        self._monotonic = monotonic
        self._warn_interval = warn_interval
        self._last_warn = -float("inf")
        self._unreported = 0
        #: total samples dropped since start (a counter)
        self.dropped = 0

    def put_many(self, samples: Iterable[Sample]) -> None:
        items = self._items
        items.extend(samples)
        overflow = len(items) - self.capacity
        if overflow > 0:
            for _ in range(overflow):
                items.popleft()
            self.dropped += overflow
            self._unreported += overflow
            now = self._monotonic()
            if now - self._last_warn >= self._warn_interval:
                log.warning("Dropped %d samples due to backpressure", self._unreported)
                self._unreported = 0
                self._last_warn = now
        if items:
            self._ready.set()

    def drain(self) -> List[Sample]:
        items = list(self._items)
        self._items.clear()
        self._ready.clear()
        return items

    async def wait(self) -> None:
        await self._ready.wait()

    def __len__(self) -> int:
        return len(self._items)
