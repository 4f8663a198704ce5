"""Read positions kept in the data dir: small JSON files written atomically."""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Optional

from sysops_agent.fsutil import read_text, write_atomic
from sysops_agent.queues import RateLimitedWarning

log = logging.getLogger("sysops_agent.logwatch")

#: per state file (three at most): "cannot save" at most once per 10 minutes, with a count
_SAVE_WARNINGS: Dict[str, RateLimitedWarning] = {}


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
    except ValueError as e:
        log.warning("ignoring corrupt %s: %s", path, e)
        return None
    return data if isinstance(data, dict) else None


def save_state(path: str, data: Dict[str, Any]) -> bool:
    """Write ``data`` to ``path`` via a temporary file and a rename; False (logged) on error."""
    try:
        write_atomic(path, json.dumps(data, sort_keys=True), fsync=True)
    except OSError as e:
        warning = _SAVE_WARNINGS.get(path)
        if warning is None:
            warning = _SAVE_WARNINGS[path] = RateLimitedWarning(
                log,
                "cannot save {path}: {error} (failed {count} time(s) since the last such line; "
                "said at most every 10 minutes)",
            )
        warning.add(1, path=path, error=e.strerror or e)
        return False
    return True
