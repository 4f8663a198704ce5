"""Logging to stderr or ``agent.log_file``, with levels, and every line redacted.

Two formats: ``text`` (one human line a record) and ``json`` (one JSON object
a line: ``ts``, ``level``, ``logger``, ``message`` and ``fields``, the
record's ``extra=`` values, plus ``exception`` when there is one), chosen
with ``--log-format``. ``--log-level``/``--log-format`` given on the command
line win over the configuration, on reloads too (:func:`set_overrides`).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Dict, Optional

from sysops_agent.redact import RedactingFilter, Redactor, install_log_redaction

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "sysops-agent"

#: the attributes every LogRecord has; anything else came from ``extra=``
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)

_overrides: Dict[str, Optional[str]] = {"level": None, "format": None}


def set_overrides(level: Optional[str] = None, log_format: Optional[str] = None) -> None:
    """The command line's ``--log-level``/``--log-format``: they beat the config's values."""
    _overrides["level"] = level
    _overrides["format"] = log_format


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts (UTC, ISO 8601), level, logger, message, fields."""

    def __init__(self, redactor: Optional[Redactor] = None) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        import json

        fields: Dict[str, Any] = {
            k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and k[:1] != "_"
        }
        obj: Dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "fields": fields,
        }
        if self.redactor:
            fields = {k: self.redactor(v) if isinstance(v, str) else v for k, v in fields.items()}
        if record.exc_info:
            obj["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            obj["exception"] = record.exc_text
        return json.dumps(obj, default=str, ensure_ascii=False)


class CleanTextFilter(logging.Filter):
    """Escape control characters in each record's message (host text: paths, log lines).

    A newline in a process name or a log line must not start a forged log line;
    tracebacks (``exc_info``) keep their lines.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from sysops_agent.model import clean_text

        message = record.getMessage()
        cleaned = clean_text(message)
        if cleaned is not message:
            record.msg, record.args = cleaned, None
        return True


class PrivateFileHandler(logging.FileHandler):
    """``logging.FileHandler`` that opens with ``O_NOFOLLOW`` and keeps the file 0600."""

    def _open(self) -> Any:
        import os

        from sysops_agent.fsutil import open_private

        fd = open_private(self.baseFilename, os.O_WRONLY | os.O_APPEND)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


def setup_logging(
    level: str = "info",
    log_file: str = "",
    redactor: Optional[Redactor] = None,
    log_format: str = "text",
) -> None:
    """(Re)configure the ``sysops_agent`` logger; safe to call again on reload."""
    level = _overrides["level"] or level
    log_format = _overrides["format"] or log_format
    logger = logging.getLogger("sysops_agent")
    logger.setLevel(level.upper())
    logger.propagate = False
    for h in list(logger.handlers):
        if h.get_name() == _HANDLER_NAME:
            logger.removeHandler(h)
            h.close()
    handler: logging.Handler
    if log_file:
        try:
            handler = PrivateFileHandler(log_file, encoding="utf-8")
        except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
            handler = logging.StreamHandler(sys.stderr)
            why = getattr(e, "strerror", None) or e
            print(
                f"sysops-agent: cannot open log file {log_file!r} (agent.log_file): {why}; "
                "logging to stderr",
                file=sys.stderr,
            )
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        JsonFormatter(redactor) if log_format == "json" else logging.Formatter(FORMAT)
    )
    if redactor is not None:
        handler.addFilter(RedactingFilter(redactor))
        # also every other logger's records (libraries may quote request URLs), whatever the handler
        install_log_redaction(redactor)
    handler.addFilter(CleanTextFilter())
    logger.addHandler(handler)
