"""``[prometheus]``: the optional /metrics endpoint (SPEC §8).

Off by default. When on it binds the loopback address 127.0.0.1:9100; any
other address must be allowed explicitly with ``allow_remote = true``
(:meth:`PrometheusConfig.check` reports it, and the exporter refuses to start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from sysops_agent.schema import Problem, opt


def is_loopback_address(address: str) -> bool:
    """True for ``localhost`` and literal loopback IPs (127.0.0.0/8, ``::1``).

    Other host names are not resolved: what a name points to can change, so
    only what is loopback by construction counts as loopback.
    """
    text = address.strip().strip("[]")
    if text.lower() == "localhost":
        return True
    import ipaddress  # only with the exporter on: 0.23 MiB the daemon otherwise skips

    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class PrometheusConfig:
    enabled: bool = opt(False)
    listen_address: str = opt("127.0.0.1")
    port: int = opt(9100, min=1, max=65535)
    allow_remote: bool = opt(False, help="required to bind anything but loopback")
    stale_after_secs: float = opt(
        300.0,
        min=1,
        max=86400,
        help="a series with one sample only is dropped from /metrics after this long; "
        "others after 3 of their collection intervals",
    )
    max_processes: int = opt(
        50, min=0, max=10000, help="process_* series exported for at most this many pids (by RSS)"
    )

    def check(self) -> List[Problem]:
        """Settings that are valid one by one but not together."""
        problems: List[Problem] = []
        if self.enabled and not self.allow_remote and not is_loopback_address(self.listen_address):
            problems.append(
                Problem(
                    "prometheus.listen_address",
                    f"{self.listen_address!r} is not a loopback address; the exporter refuses "
                    "to start. Set prometheus.allow_remote = true to expose /metrics beyond "
                    "this host",
                )
            )
        return problems
