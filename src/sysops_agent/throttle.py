"""Repeated warnings: one line per kind per 10 minutes, with the count of the rest.

A fault that lasts (a read-only data directory, a full disk, an unreadable log
file, a queue that overflows, samples refused) would otherwise write the same
line at every attempt — one every ``state_save_interval_secs``, or every few
seconds — and bury everything else in the log. :class:`ThrottledWarnings` logs
the first occurrence of a kind at once, then at most one line per
:data:`WARN_EVERY_SECS`, saying how many were not logged in between; after
:meth:`~ThrottledWarnings.recovered` the next failure of that kind is logged at
once again. Time comes from the ``monotonic`` function passed in (the virtual
clock in tests).
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Dict, List

#: at most one line per kind in this many seconds (the README's promise)
WARN_EVERY_SECS = 600.0
#: kinds remembered (a kind may name a file); the least recently logged are forgotten
MAX_KINDS = 256


class ThrottledWarnings:
    """One logger's repeated warnings, each kind at most once per ``every`` seconds."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        every: float = WARN_EVERY_SECS,
    ) -> None:
        self.logger = logger
        self.monotonic = monotonic
        self.every = every
        #: kind -> [time of the last line, occurrences not logged since]
        self._kinds: Dict[str, List[float]] = {}

    def warning(self, kind: str, msg: str, *args: object, count: bool = True) -> bool:
        """Log ``msg % args`` unless ``kind`` was logged less than ``every`` seconds ago.

        Returns whether a line was written. A written line that follows
        suppressed ones ends with their count (unless ``count`` is false: the
        caller's message already counts, e.g. the items a queue dropped).
        """
        now = self.monotonic()
        state = self._kinds.get(kind)
        if state is not None and now - state[0] < self.every:
            state[1] += 1
            return False
        text = msg % args if args else msg
        if count and state is not None and state[1]:
            text += (
                f" ({int(state[1])} more like this in the last {now - state[0]:.0f}s, not logged)"
            )
        self.logger.warning("%s", text)
        if state is None:
            if len(self._kinds) >= MAX_KINDS:
                oldest = min(self._kinds, key=lambda k: self._kinds[k][0])
                del self._kinds[oldest]
            self._kinds[kind] = [now, 0]
        else:
            state[0], state[1] = now, 0
        return True

    def failing(self, kind: str) -> bool:
        """Whether ``kind`` was logged and not declared :meth:`recovered` since."""
        return kind in self._kinds

    def suppressed(self, kind: str) -> int:
        """Occurrences of ``kind`` not logged since its last line."""
        state = self._kinds.get(kind)
        return 0 if state is None else int(state[1])

    def recovered(self, kind: str) -> int:
        """The fault ``kind`` is over: forget it (its next failure logs at once).

        Returns how many occurrences were not logged since the last line.
        """
        state = self._kinds.pop(kind, None)
        return 0 if state is None else int(state[1])
