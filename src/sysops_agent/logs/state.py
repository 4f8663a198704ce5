"""Read positions kept in the data dir: small JSON files written atomically."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Optional

log = logging.getLogger("sysops_agent.logs")


def load_state(path: Path) -> Optional[Dict[str, Any]]:
    """The saved object, or None when there is none (or it is unreadable: logged)."""
    try:
        text = path.read_text(encoding="utf-8")
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


def save_state(path: Path, data: Dict[str, Any]) -> bool:
    """Write ``data`` to ``path`` via a temporary file and a rename; False (logged) on error."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        log.warning("cannot save %s: %s", path, e.strerror or e)
        return False
    return True
