"""Keep secrets out of every log line, error message and command output.

A :class:`Redactor` knows the secret values of the configuration (webhook
URLs, tokens, passwords, header values) and replaces each with a masked form
that still tells an operator *which* endpoint is meant:

- a URL keeps its scheme and host: ``https://hooks.slack.com/***``
- a Telegram-style token keeps its bot id: ``bot123:***`` / ``123:***``
- anything else becomes ``***``

Besides the value itself, the forms in which a secret tends to reappear are
masked too: a URL's path (HTTP libraries and proxies quote it without the host), its
percent-encoded form, a bot token without its ``bot`` prefix or only its
secret half, the credential after ``Bearer``/``Basic``/``token`` in a header
value, and a password inside a URL's user-info part. Secrets shorter than
:data:`MIN_SECRET_LEN` are not masked (masking ``"ab"`` everywhere would make
every log line unreadable); the config loader's checks keep them rare.

:class:`RedactingFilter` applies it to the records one handler emits;
:func:`install_log_redaction` applies it to every record the process
creates, whichever logger and handler it goes through (third-party loggers
may quote request URLs). Both also redact the formatted
exception text and stack, so an exception message quoting a URL cannot leak
it either.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Iterable, List, Tuple

MASK = "***"
#: shorter secrets are not masked (see the module docstring)
MIN_SECRET_LEN = 4
#: a part of a secret (a path segment, a token half) is masked on its own from this length
MIN_PART_LEN = 12
_TOKEN = re.compile(r"^(bot)?(\d+):([A-Za-z0-9_-]+)$")
_AUTH_SCHEME = re.compile(r"^(?:Bearer|Basic|Token|Bot|Digest|ApiKey|Key)\s+(\S+)$", re.IGNORECASE)


def mask_secret(value: str) -> str:
    """The masked form of one secret value."""
    if "://" in value:
        from urllib.parse import urlsplit  # (see _url_parts)

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
        #: (secret, shortest prefix length that is masked, mask) for cut-off secrets
        self._prefixes: List[Tuple[str, int, str]] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: str) -> None:
        secret = secret.strip()
        if len(secret) < MIN_SECRET_LEN or any(s == secret for s, _ in self._pairs):
            return
        pairs = [(secret, mask_secret(secret))]
        if "://" in secret:
            pairs.extend(_url_parts(secret))
        m = _TOKEN.match(secret)
        if m:
            bare = secret[3:] if secret.startswith("bot") else secret
            pairs.append((bare, mask_secret(bare)))
            if len(m.group(3)) >= MIN_PART_LEN:
                pairs.append((m.group(3), MASK))
        m = _AUTH_SCHEME.match(secret)
        if m and len(m.group(1)) >= MIN_SECRET_LEN:
            pairs.append((m.group(1), MASK))
        # the same values percent-encoded (a secret quoted inside a URL or a form body)
        from urllib.parse import quote  # (see _url_parts)

        for plain, masked in list(pairs):
            for encoded in {quote(plain, safe=""), quote(plain, safe="/:")}:
                if encoded != plain:
                    pairs.append((encoded, masked))
        known = {s for s, _ in self._pairs}
        self._pairs.extend(p for p in pairs if p[0] not in known)
        self._prefixes.append((secret, _min_prefix(secret), pairs[0][1]))
        # longest first, so a URL is masked whole before its path is
        self._pairs.sort(key=lambda p: len(p[0]), reverse=True)

    def __call__(self, text: str) -> str:
        for secret, masked in self._pairs:
            if secret in text:
                text = text.replace(secret, masked)
        for secret, shortest, masked in self._prefixes:
            text = _mask_prefixes(text, secret, shortest, masked)
        return text

    def __bool__(self) -> bool:
        return bool(self._pairs)


def _url_parts(url: str) -> List[Tuple[str, str]]:
    """The pieces of a secret URL that show up on their own in error messages."""
    # Imported here: only a config with secrets needs it (its HTTP channels import it
    # anyway), and a daemon without any is spared urllib.parse and ipaddress.
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    out: List[Tuple[str, str]] = []
    if parts.path and len(parts.path) > MIN_SECRET_LEN:
        if parts.query:
            out.append((f"{parts.path}?{parts.query}", "/" + MASK))
        out.append((parts.path, "/" + MASK))
        last = parts.path.rstrip("/").rsplit("/", 1)[-1]
        if len(last) >= MIN_PART_LEN:  # the token part of a webhook URL
            out.append((last, MASK))
    if parts.query and len(parts.query) >= MIN_SECRET_LEN:
        out.append((parts.query, MASK))
    if parts.password and len(parts.password) >= MIN_SECRET_LEN:
        out.append((parts.password, MASK))
    return out


def _min_prefix(secret: str) -> int:
    """How much of the start of ``secret`` already counts as the secret when cut off.

    Messages shorten long values (``'https://hooks.slack.com/services/T0/B0/ab...'``);
    the beginning of a secret is still secret. For a URL everything after the
    host is; for other values, at least half of it.
    """
    if "://" in secret:
        from urllib.parse import urlsplit  # (see _url_parts)

        try:
            parts = urlsplit(secret)
            return min(len(secret), len(f"{parts.scheme}://{parts.netloc}/") + 4)
        except ValueError:
            pass
    return min(len(secret), max(MIN_SECRET_LEN, len(secret) // 2 + 1))


def _mask_prefixes(text: str, secret: str, shortest: int, masked: str) -> str:
    """Mask every run of ``text`` that is a start of ``secret`` at least ``shortest`` long."""
    head = secret[:shortest]
    start = text.find(head)
    while start >= 0:
        end = start + shortest
        while end < len(text) and end - start < len(secret) and text[end] == secret[end - start]:
            end += 1
        text = text[:start] + masked + text[end:]
        start = text.find(head, start + len(masked))
    return text


def redact_record(record: logging.LogRecord, redactor: Redactor) -> None:
    """Replace the record's message, arguments, exception and stack text by redacted text."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string must not kill logging
        message = str(record.msg)
    record.msg = redactor(message)
    record.args = None
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = redactor(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = redactor(record.exc_text)
    if record.stack_info:
        record.stack_info = redactor(record.stack_info)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the message, its arguments and exception text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redactor:
            redact_record(record, self.redactor)
        return True


class RedactingRecordFactory:
    """A log record factory that redacts each record as it is created (see below)."""

    def __init__(self, redactor: Redactor, previous: Callable[..., logging.LogRecord]) -> None:
        self.redactor = redactor
        self.previous = previous

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        if self.redactor:
            redact_record(record, self.redactor)
        return record

    def uninstall(self) -> None:
        if logging.getLogRecordFactory() is self:
            logging.setLogRecordFactory(self.previous)


def install_log_redaction(redactor: Redactor) -> RedactingRecordFactory:
    """Redact every log record of the process when it is created.

    A handler filter only sees what reaches that handler; this covers every
    logger (``asyncio``, ``aiosmtplib``, ...) and every handler, including ones added
    later. Calling it again replaces the redactor instead of stacking factories.
    """
    current = logging.getLogRecordFactory()
    if isinstance(current, RedactingRecordFactory):
        current.redactor = redactor
        return current
    factory = RedactingRecordFactory(redactor, current)
    logging.setLogRecordFactory(factory)
    return factory
