"""OpenSSL only when something needs it.

``import asyncio`` imports :mod:`ssl`, which maps libssl and libcrypto and
initialises OpenSSL: 4.4 MiB of RSS, a sixth of the agent's budget, on a host
whose channels are the console and syslog and that never opens a TLS
connection. asyncio's three modules that use it (``base_events``,
``selector_events``, ``sslproto``) import it inside ``try/except ImportError``
and work without it until someone asks for TLS.

:func:`import_asyncio` imports asyncio while ``ssl`` is unavailable — only
for the duration of that one import; nothing else is ever refused ``ssl`` —
and installs an import hook. The first later ``import ssl``, from wherever
(the HTTP client on its first https request, aiosmtplib, prometheus_client), loads the real module and hands it to
asyncio: ``ssl`` is set in ``base_events`` and ``selector_events`` and
``sslproto`` is re-executed, which is exactly the state a plain
``import asyncio`` would have left. No TLS connection can exist before that
moment, so none sees the switch.

This leans on asyncio's private layout (which modules bind ``ssl`` at import,
and that ``sslproto`` builds constants from it), so it is enabled only on the
Python versions the test matrix proves it on, :data:`PROVEN` (3.9 to 3.13,
``make test-matrix``). On any other version :func:`import_asyncio` does a plain
``import asyncio`` (OpenSSL loaded as usual, 4.4 MiB more RSS, nothing else
changes): a newer Python costs memory, never a broken TLS channel. The choice
is made once, at start-up (``cli.main``'s first step); :func:`decision` says
which was taken and ``sysops-agent run`` logs it once at debug level. To enable
a new version, add it to the matrix, run ``make test-matrix`` (the
``tests/unit/test_lazyssl.py`` cases are the proof), then widen :data:`PROVEN`.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Optional, Sequence, Tuple, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

#: asyncio's modules that look for ``ssl`` when imported (3.9 to 3.13 alike)
ASYNCIO_SSL_USERS = ("asyncio.base_events", "asyncio.selector_events")
ASYNCIO_SSLPROTO = "asyncio.sslproto"
#: the first and last ``(major, minor)`` the deferral is tested on (``make test-matrix``)
PROVEN = ((3, 9), (3, 13))

_decision = "not made: import_asyncio() was not called"


def deferral_proven(version_info: Sequence[Any] = sys.version_info) -> bool:
    """Whether asyncio's internals on this Python version are the ones tested here."""
    version: Tuple[int, int] = (int(version_info[0]), int(version_info[1]))
    return PROVEN[0] <= version <= PROVEN[1]


def decision() -> str:
    """What :func:`import_asyncio` did, in words (for the log)."""
    return _decision


def import_asyncio(version_info: Sequence[Any] = sys.version_info) -> bool:
    """Import asyncio, without ssl where :func:`deferral_proven`; True if ssl was deferred.

    False: ssl or asyncio was already loaded, or this Python version is not
    proven (then asyncio is imported the plain way, with ssl).
    """
    global _decision
    version = f"{version_info[0]}.{version_info[1]}"
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        _decision = "ssl not deferred: already imported"
        return False
    if not deferral_proven(version_info):
        import asyncio

        first, last = (f"{major}.{minor}" for major, minor in PROVEN)
        _decision = (
            f"ssl loaded with asyncio: Python {version} is outside the versions "
            f"the deferral is tested on ({first} to {last})"
        )
        return False
    sys.modules["ssl"] = None  # type: ignore[assignment]  # the documented "not importable" marker
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]
    sys.meta_path.insert(0, _SSLWatcher())
    _decision = f"ssl deferred until first use (Python {version})"
    return True


def give_to_asyncio(ssl: ModuleType) -> None:
    """Put ``ssl`` where asyncio would have found it at its own import."""
    for name in ASYNCIO_SSL_USERS:
        mod = sys.modules.get(name)
        if mod is not None and getattr(mod, "ssl", None) is None:
            mod.ssl = ssl  # type: ignore[attr-defined]
    proto = sys.modules.get(ASYNCIO_SSLPROTO)
    if proto is not None and getattr(proto, "ssl", None) is None:
        importlib.reload(proto)  # its module-level constants are built from ssl


# Plain classes, not importlib.abc's: importing importlib.abc pulls in
# importlib.resources, tempfile, shutil, bz2 and lzma (0.6 MiB).


class _SSLWatcher:
    """A meta path finder that finds nothing itself: it wraps the real ``ssl`` loader
    once, then steps aside."""

    def find_spec(
        self,
        fullname: str,
        path: Optional[Sequence[str]],
        target: Optional[ModuleType] = None,
    ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != "ssl":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = cast("Loader", _HandOver(spec.loader))
        return spec


class _HandOver:
    """The ``ssl`` loader, then :func:`give_to_asyncio`."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        give_to_asyncio(module)

    def __getattr__(self, name: str) -> object:  # get_source, get_filename, ...
        return getattr(self.loader, name)
