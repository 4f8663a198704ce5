"""Text helpers shared by the channels: measuring and cutting to a platform's limit.

Platforms count differently: Python's ``len`` counts code points, Telegram
counts UTF-16 code units (an emoji outside the BMP counts 2), and for Discord
we count UTF-16 units too because it never undercounts. Every cut happens on
the *plain* text, before escaping, so it can never split an escape sequence,
an entity or a tag; and it never splits a code point.
"""

from __future__ import annotations

import re
from typing import Callable

ELLIPSIS = "…"

Measure = Callable[[str], int]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def truncate(
    text: str,
    limit: int,
    measure: Measure = len,
    escape: Callable[[str], str] = lambda s: s,
) -> str:
    """Escape ``text`` and cut it so the result measures at most ``limit``.

    ``measure`` is applied to the *escaped* text (Slack counts ``&amp;`` as 5);
    for a platform that counts after entity parsing (Telegram), pass the
    plain measure and escape afterwards. A cut text ends with ``…``.
    """
    escaped = escape(text)
    if measure(escaped) <= limit:
        return escaped
    budget = limit - measure(ELLIPSIS)
    if budget <= 0:
        return ELLIPSIS if measure(ELLIPSIS) <= limit else ""
    out: list[str] = []
    used = 0
    for ch in text:
        piece = escape(ch)
        size = measure(piece)
        if used + size > budget:
            break
        out.append(piece)
        used += size
    return "".join(out) + ELLIPSIS


def one_line(text: str) -> str:
    """CR/LF (and other line breaks) become spaces; other control characters go."""
    return _CONTROL.sub("", _LINE_BREAKS.sub(" ", text))


def strip_control(text: str) -> str:
    """Keep line breaks (as ``\\n``) but drop other control characters."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def format_labels(labels: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels)
