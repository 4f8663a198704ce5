"""``[prometheus]``: the optional /metrics endpoint (SPEC §8); ``[remote_write]``: the push.

Off by default. When on it binds the loopback address 127.0.0.1:9845 (a port
node_exporter's 9100 does not collide with; README "Using with Prometheus and
Alertmanager" says why this one); any
other address must be allowed explicitly with ``allow_remote = true``
(:meth:`PrometheusConfig.check` reports it, and the exporter refuses to start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

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


#: not node_exporter's 9100 (issue 15): see the README for the choice
DEFAULT_PORT = 9845


@dataclass(frozen=True)
class PrometheusConfig:
    enabled: bool = opt(False)
    listen_address: str = opt("127.0.0.1")
    port: int = opt(DEFAULT_PORT, min=1, max=65535)
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
    max_connections: int = opt(
        16,
        min=1,
        max=1000,
        help="connections served at once; more are reset (a scraper needs one)",
    )
    read_timeout_secs: float = opt(
        5.0,
        min=0.1,
        max=300,
        help="a client that has not sent its request head (or its next one) by then is dropped",
    )
    web_config_file: str = opt(
        "",
        help="exporter-toolkit web config (TLS, basic_auth_users); needs the exporter-web extra",
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
        if self.enabled and self.web_config_file:
            from sysops_agent.exporters.webconfig import WebConfigError, load_web_config

            try:
                load_web_config(self.web_config_file)
            except WebConfigError as e:
                problems.append(Problem("prometheus.web_config_file", str(e)))
        return problems


@dataclass(frozen=True)
class RemoteWriteConfig:
    enabled: bool = opt(False)
    url: str = opt("", help="e.g. http://prometheus:9090/api/v1/write")
    interval_secs: float = opt(30.0, min=1, max=3600, help="push this often")
    max_samples_per_send: int = opt(2000, min=1, max=100000)
    max_queued_samples: int = opt(
        50000, min=100, max=10_000_000, help="beyond this the oldest are dropped (counted)"
    )
    timeout_secs: float = opt(10.0, min=1, max=120)
    external_labels: Dict[str, str] = opt(factory=dict, help="added to every series")
    basic_auth_username: str = opt("")
    basic_auth_password: str = opt("", secret=True)
    basic_auth_password_file: str = opt("")
    bearer_token: str = opt("", secret=True)
    bearer_token_file: str = opt("")
    ca_file: str = opt("", help="CA bundle to verify an https endpoint; empty = system store")

    def check(self) -> List[Problem]:
        if not self.enabled:
            return []
        problems: List[Problem] = []
        if not self.url.startswith(("http://", "https://")):
            problems.append(Problem("remote_write.url", "an http:// or https:// URL is required"))
        if (self.bearer_token or self.bearer_token_file) and self.basic_auth_username:
            problems.append(
                Problem(
                    "remote_write.bearer_token", "basic auth and a bearer token exclude each other"
                )
            )
        return problems
