"""Time as an object: the real clock for the daemon, a virtual one for replay and tests.

Every component that needs "now" or needs to wait takes a :class:`Clock`. The
virtual clock never sleeps: ``sleep`` advances virtual time as soon as every
other task is waiting too, which makes tests and ``replay`` deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import time
from typing import Any, Awaitable, Optional, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (for timestamps)."""

    def monotonic(self) -> float:
        """Monotonic seconds (for durations and scheduling)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that only moves when told to, or when every sleeper is waiting.

    ``advance(dt)`` moves time forward and wakes the sleepers whose deadline
    passed. ``sleep`` registers a deadline and waits for ``advance`` to reach it.
    ``run_until_idle`` style driving is left to the caller (tests call
    ``await clock.advance(...)``).
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._start = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now - self._start

    def set(self, now: float) -> None:
        """Jump to ``now`` (never backwards) without waking sleepers; see :meth:`advance`."""
        if now > self._now:
            self._now = now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut

    def next_deadline(self) -> float | None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking each sleeper at its deadline in order."""
        target = self._now + seconds
        while True:
            # Let woken tasks run and register new sleeps before looking again.
            for _ in range(5):
                await asyncio.sleep(0)
            deadline = self.next_deadline()
            if deadline is None or deadline > target:
                break
            self._now = max(self._now, deadline)
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, fut = heapq.heappop(self._sleepers)
                if not fut.done():
                    fut.set_result(None)
        self._now = target
        for _ in range(5):
            await asyncio.sleep(0)


def until_next(clock: Clock, interval: float, offset: float = 0.0, at_least: float = 0.0) -> float:
    """Seconds from now to the next point of the ``interval`` grid (shifted by ``offset``).

    The grid is the clock's monotonic time in whole intervals: loops that
    sleep with it instead of ``interval`` after their own work wake together
    (one wake-up of the event loop for all, issue 17), and do not drift. The
    result is in ``(0, interval]``: a loop that sleeps on the grid point it is
    at waits a whole interval. A grid point closer than ``at_least`` is
    skipped: a loop that samples should not take two samples a moment apart
    (the exporter estimates a series' interval from its last two).
    """
    now = clock.monotonic() - offset
    wait = (math.floor(now / interval) + 1) * interval - now
    return wait + interval if wait < at_least else wait


async def _within(clock: Clock, task: asyncio.Future[T], seconds: float) -> bool:
    """Wait for ``task`` at most ``seconds`` of ``clock`` time; cancel it if it is not done."""
    timer: asyncio.Future[Any] = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, timer):
            if not t.done():
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
    return task.done() and not task.cancelled()


async def wait_first(clock: Clock, event: asyncio.Event, seconds: Optional[float]) -> bool:
    """Wait until ``event`` is set or ``seconds`` of ``clock`` time pass, whichever is first.

    Returns True when the event is set. ``seconds=None`` waits for the event alone.
    The one helper for "sleep, but wake early when told to": every loop that can
    be stopped or poked uses it, so each stays a pure ``while`` over its work.
    """
    if event.is_set():
        return True
    if seconds is None:
        await event.wait()
        return True
    await _within(clock, asyncio.ensure_future(event.wait()), seconds)
    return event.is_set()


async def race(clock: Clock, work: Awaitable[T], seconds: float) -> tuple[bool, Optional[T]]:
    """Await ``work`` for at most ``seconds`` of ``clock`` time: (finished, result).

    An unfinished ``work`` is cancelled; its exception, if it finished with one, is raised.
    """
    task = asyncio.ensure_future(work)
    if await _within(clock, task, seconds):
        return True, task.result()
    return False, None
