"""Keep secrets out of every log line, error message and command output.

A :class:`Redactor` knows the secret values of the configuration (webhook
URLs, tokens, passwords, header values) and replaces each with a masked form
that still tells an operator *which* endpoint is meant:

- a URL keeps its scheme and host: ``https://hooks.slack.com/***``
- a Telegram-style token keeps its bot id: ``bot123:***`` / ``123:***``
- anything else becomes ``***``

:class:`RedactingFilter` applies it to every log record, including the
formatted exception text, so that an exception message quoting a URL cannot
leak it either.
"""

from __future__ import annotations

import logging
import re
from typing import Iterable, List, Tuple
from urllib.parse import urlsplit

MASK = "***"
_TOKEN = re.compile(r"^(bot)?(\d+):[A-Za-z0-9_-]+$")


def mask_secret(value: str) -> str:
    """The masked form of one secret value."""
    if "://" in value:
        try:
            parts = urlsplit(value)
        except ValueError:
            return MASK
        if parts.scheme and parts.hostname:
            return f"{parts.scheme}://{parts.hostname}/{MASK}"
        return MASK
    m = _TOKEN.match(value)
    if m:
        return f"{m.group(1) or ''}{m.group(2)}:{MASK}"
    return MASK


class Redactor:
    """Replaces every known secret (and its tail parts) in a text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._pairs: List[Tuple[str, str]] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: str) -> None:
        secret = secret.strip()
        if len(secret) < 4 or any(s == secret for s, _ in self._pairs):
            return
        pairs = [(secret, mask_secret(secret))]
        # A URL often shows up without its scheme or only its path (httpx errors,
        # proxies); a token shows up on its own inside a URL path.
        if "://" in secret:
            try:
                parts = urlsplit(secret)
                if parts.path and len(parts.path) > 4:
                    pairs.append(
                        (parts.path + (f"?{parts.query}" if parts.query else ""), "/" + MASK)
                    )
                    pairs.append((parts.path, "/" + MASK))
            except ValueError:
                pass
        m = _TOKEN.match(secret)
        if m:
            bare = secret[3:] if secret.startswith("bot") else secret
            pairs.append((bare, mask_secret(bare)))
        self._pairs.extend(pairs)
        # longest first, so a URL is masked whole before its path is
        self._pairs.sort(key=lambda p: len(p[0]), reverse=True)

    def __call__(self, text: str) -> str:
        for secret, masked in self._pairs:
            if secret in text:
                text = text.replace(secret, masked)
        return text

    def __bool__(self) -> bool:
        return bool(self._pairs)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the message, its arguments and exception text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not kill logging
            message = str(record.msg)
        record.msg = self.redactor(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            formatter = logging.Formatter()
            record.exc_text = self.redactor(formatter.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        return True
