"""Read positions kept in the data dir: small JSON files written atomically."""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Optional

from sysops_agent.fsutil import read_text, write_atomic
from sysops_agent.throttle import ThrottledWarnings

log = logging.getLogger("sysops_agent.logwatch")

#: a read-only or full data directory fails every save: one line per file per 10 minutes
_save_warnings = ThrottledWarnings(log)


def load_state(path: str) -> Optional[Dict[str, Any]]:
    """The saved object, or None when there is none (or it is unreadable: logged)."""
    try:
        text = read_text(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("cannot read %s: %s; starting without it", path, e.strerror or e)
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:  # RecursionError: nested thousands deep
        log.warning("ignoring corrupt %s: %s", path, e)
        return None
    return data if isinstance(data, dict) else None


def save_state(
    path: str, data: Dict[str, Any], warnings: Optional[ThrottledWarnings] = None
) -> bool:
    """Write ``data`` to ``path`` via a temporary file and a rename; False (logged) on error.

    The warning is rate-limited per file (``warnings``, by default this
    module's): a lasting fault is one line per 10 minutes, with a count.
    """
    warn = warnings or _save_warnings
    try:
        write_atomic(path, json.dumps(data, sort_keys=True), fsync=True)
    except OSError as e:
        warn.warning(f"save {path}", "cannot save %s: %s", path, e.strerror or e)
        return False
    if warn.failing(f"save {path}"):
        warn.recovered(f"save {path}")
        log.info("%s saved again", path)
    return True
