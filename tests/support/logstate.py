"""Undo what a command does to the process-wide logging setup, so later tests see the default."""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator


@contextlib.contextmanager
def restore_logging(name: str = "sysops_agent") -> Iterator[None]:
    logger = logging.getLogger(name)
    handlers = list(logger.handlers)
    propagate, level = logger.propagate, logger.level
    factory = logging.getLogRecordFactory()
    try:
        yield
    finally:
        for h in list(logger.handlers):
            if h not in handlers:
                logger.removeHandler(h)
                h.close()
        logger.propagate, logger.level = propagate, level
        logging.setLogRecordFactory(factory)
