"""Small helpers shared by the procfs collectors: parse errors and glob filters."""

from __future__ import annotations

import fnmatch
import re
from typing import Dict, Iterable


class ParseError(ValueError):
    """A procfs file did not have the expected shape; the message names the file and the line."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        super().__init__(f"{source}: {message}")


class GlobFilter:
    """Matches names against shell globs (``loop*``, ``veth*``), caching each name's answer.

    Device and interface names repeat every cycle, so the cache makes the
    steady-state cost one dict lookup per name.
    """

    __slots__ = ("_cache", "_regex", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        joined = "|".join(f"(?:{fnmatch.translate(p)})" for p in self.patterns)
        self._regex = re.compile(joined) if self.patterns else None
        self._cache: Dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        hit = self._cache.get(name)
        if hit is None:
            hit = bool(self._regex and self._regex.match(name))
            if len(self._cache) > 4096:  # names churn (veth*, pids): keep the cache bounded
                self._cache.clear()
            self._cache[name] = hit
        return hit
