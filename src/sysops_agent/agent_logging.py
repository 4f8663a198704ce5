"""Logging to stderr or ``agent.log_file``, with levels, and every line redacted."""

from __future__ import annotations

import logging
import sys
from typing import Optional

from sysops_agent.redact import RedactingFilter, Redactor, install_log_redaction

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "sysops-agent"


def setup_logging(
    level: str = "info", log_file: str = "", redactor: Optional[Redactor] = None
) -> None:
    """(Re)configure the ``sysops_agent`` logger; safe to call again on reload."""
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
            handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as e:
            handler = logging.StreamHandler(sys.stderr)
            print(
                f"sysops-agent: cannot open log file {log_file}: {e.strerror}; logging to stderr",
                file=sys.stderr,
            )
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(FORMAT))
    if redactor is not None:
        handler.addFilter(RedactingFilter(redactor))
        # also every other logger's records (httpx quotes request URLs), whatever the handler
        install_log_redaction(redactor)
    logger.addHandler(handler)
