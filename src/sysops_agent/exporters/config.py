"""``[prometheus]``: the optional /metrics endpoint (SPEC §8)."""

from __future__ import annotations

from dataclasses import dataclass

from sysops_agent.schema import opt


@dataclass
class PrometheusConfig:
    enabled: bool = opt(False)
    listen_address: str = opt("127.0.0.1")
    port: int = opt(9100, min=1, max=65535)
    allow_remote: bool = opt(False, help="required to bind anything but loopback")
