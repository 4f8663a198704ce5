"""Start the real Prometheus and Alertmanager (Debian packages) on free loopback ports.

Each server gets a temporary config and data directory, is waited for on
``/-/ready`` with a bounded poll, and is stopped (SIGTERM, then SIGKILL) by the
fixture that started it. The binaries come from ``make system-deps``; when they
are absent the tests skip and say why.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, TypeVar

import pytest

T = TypeVar("T")

INSTALL_HINT = "run `make system-deps` as root (apt-get install prometheus prometheus-alertmanager)"


def find_binary(env_var: str, *names: str) -> Optional[str]:
    override = os.environ.get(env_var)
    if override:
        return override
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_binary(env_var: str, *names: str) -> str:
    path = find_binary(env_var, *names)
    if path is None:
        pytest.skip(f"{names[0]} is not installed (set {env_var} or {INSTALL_HINT})")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def get_json(url: str) -> Any:
    status, body = http_get(url)
    assert status == 200, f"GET {url}: HTTP {status}: {body[:300]!r}"
    return json.loads(body)


def poll(what: str, fn: Callable[[], Optional[T]], timeout: float = 30.0, every: float = 0.2) -> T:
    """Call ``fn`` until it returns something other than None, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while True:
        try:
            result = fn()
            if result is not None:
                return result
        except (OSError, ValueError, AssertionError) as e:
            last_error = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}: {last_error!r}")
        time.sleep(every)


class Server:
    """A subprocess with its log file; :meth:`stop` ends it."""

    def __init__(self, name: str, argv: List[str], workdir: Path, port: int) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir, stdin=subprocess.DEVNULL
        )

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> Optional[bool]:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            status, _ = http_get(self.url + "/-/ready", timeout=2)
            # 401: up, behind the basic auth of a --web.config.file
            return True if status in (200, 401) else None

        try:
            poll(f"{self.name} /-/ready", ready, timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.name} log:\n{self.log_tail()}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def start_ready(name: str, workdir: Path, argv: Callable[[int], List[str]]) -> Server:
    """Start ``name`` on a free loopback port and wait for its ``/-/ready``."""
    port = free_port()
    server = Server(name, argv(port), workdir, port)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def start_prometheus(
    binary: str, workdir: Path, targets: List[str], extra_args: Sequence[str] = ()
) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: sysops\n"
        f"    static_configs:\n      - targets: {json.dumps(targets)}\n"
    )
    return start_ready(
        "prometheus",
        workdir,
        lambda port: [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
            *extra_args,
        ],
    )


def start_alertmanager(
    binary: str, workdir: Path, extra_config: str = "", web_config: str = ""
) -> Server:
    """``extra_config`` is appended to alertmanager.yml (e.g. ``inhibit_rules``);
    ``web_config`` is an exporter-toolkit web config (basic auth, TLS)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: blackhole\n"
        "  group_wait: 1s\n"
        "  group_interval: 1s\n"
        "receivers:\n"
        "  - name: blackhole\n" + extra_config
    )
    extra_args: List[str] = []
    if web_config:
        (workdir / "web.yml").write_text(web_config)
        extra_args.append(f"--web.config.file={workdir / 'web.yml'}")
    return start_ready(
        "alertmanager",
        workdir,
        lambda port: [
            binary,
            f"--config.file={config}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
            *extra_args,
        ],
    )


def prom_query(server: Server, query: str) -> List[Any]:
    url = server.url + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    data = get_json(url)
    assert data["status"] == "success", data
    return list(data["data"]["result"])
