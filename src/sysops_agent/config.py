"""The agent's configuration: TOML -> typed dataclasses, defaults, ``${ENV}`` and validation.

Every key has a default, so the agent runs without a file. Problems are
collected, not raised one at a time: :func:`load_config` returns the config
(bad values replaced by their defaults) together with every :class:`Problem`.
Fatal problems — a file that cannot be parsed, a literal secret in a file
others can read — stop the agent; the rest are warnings at start-up and
errors for ``check-config``.

Each subsystem owns its section's dataclasses (``collectors/*``,
``analyzers/config.py``, ``alerting/config.py``, ``storage/config.py``,
``logwatch/config.py``, ``exporters/config.py``); this module assembles them.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from sysops_agent.alerting.config import AlertingConfig
from sysops_agent.analyzers.config import AnalyzerConfig, ThresholdRule, default_thresholds
from sysops_agent.collectors.config import CollectorsConfig
from sysops_agent.exporters.config import PrometheusConfig
from sysops_agent.schema import Builder, Problem, opt
from sysops_agent.storage.config import StorageConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10
    import tomli as tomllib

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass
class AgentConfig:
    hostname: str = opt("", help="name used in alerts; empty = the system hostname")
    log_level: str = opt("info", choices=LOG_LEVELS)
    log_file: str = opt("", help="empty = stderr")
    pid_file: str = opt("", help="empty = no PID file")
    data_dir: str = opt("/var/lib/sysops-agent", help="SQLite database and log cursors")
    proc_root: str = opt("/proc")
    sys_root: str = opt("/sys")
    etc_root: str = opt("/etc", help="where os-release lives (tests point it elsewhere)")


@dataclass
class Config:
    agent: AgentConfig = opt(factory=AgentConfig)
    collector: CollectorsConfig = opt(factory=CollectorsConfig)
    thresholds: Dict[str, ThresholdRule] = opt(factory=default_thresholds)
    analyzer: AnalyzerConfig = opt(factory=AnalyzerConfig)
    storage: StorageConfig = opt(factory=StorageConfig)
    alerting: AlertingConfig = opt(factory=AlertingConfig)
    prometheus: PrometheusConfig = opt(factory=PrometheusConfig)


@dataclass
class LoadResult:
    config: Config
    problems: List[Problem]
    #: non-empty secret values, by key path, for redaction in logs
    secrets: Dict[str, str]

    @property
    def fatal(self) -> List[Problem]:
        return [p for p in self.problems if p.fatal]


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(
    data: Any, path: str, env: Dict[str, str], problems: List[Problem], refs: set[str]
) -> Any:
    """Replace ``${VAR}`` in every string value; an unset variable is a problem naming the key."""
    if isinstance(data, dict):
        return {
            k: expand_env(v, f"{path}.{k}" if path else k, env, problems, refs)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [expand_env(v, f"{path}[{i}]", env, problems, refs) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        refs.add(path)

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                problems.append(Problem(path, f"environment variable {name} is not set"))
                return ""
            return env[name]

        return _ENV_REF.sub(sub, data)
    return data


def parse_toml(text: str, source: str) -> Tuple[Dict[str, Any], List[Problem]]:
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as e:
        # tomllib's message already ends with "(at line L, column C)"
        return {}, [Problem("", f"{source}: invalid TOML: {e}", fatal=True)]
    except RecursionError:  # arrays or inline tables nested a thousand deep
        return {}, [Problem("", f"{source}: invalid TOML: nested too deeply", fatal=True)]


def load_config(
    path: Optional[str | os.PathLike[str]] = None,
    env: Optional[Dict[str, str]] = None,
    text: Optional[str] = None,
) -> LoadResult:
    """Read, expand, validate. Never raises for bad content: problems are returned."""
    env = dict(os.environ) if env is None else env
    problems: List[Problem] = []
    raw: Dict[str, Any] = {}
    source = str(path) if path is not None else "<config>"
    if text is None and path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            problems.append(Problem("", f"cannot read {source}: {e.strerror or e}", fatal=True))
        except UnicodeDecodeError as e:
            problems.append(Problem("", f"{source} is not UTF-8 text: {e}", fatal=True))
    if text is not None:
        raw, parse_problems = parse_toml(text, source)
        problems.extend(parse_problems)
    refs: set[str] = set()
    raw = expand_env(raw, "", env, problems, refs)
    builder = Builder()
    config = builder.build(Config, raw, "")
    problems.extend(builder.problems)
    # A bad value already reported is not reported again by a cross-check.
    seen = {p.path for p in problems}
    problems.extend(p for p in _cross_checks(config) if p.path not in seen)
    literal = {p: v for p, v in builder.secret_values.items() if p not in refs}
    if literal and path is not None and text is not None:
        problems.extend(_check_secret_file_mode(os.fspath(path), sorted(literal)))
    return LoadResult(config, problems, builder.secret_values)


def _cross_checks(config: Config) -> List[Problem]:
    problems: List[Problem] = []
    for name, rule in config.thresholds.items():
        levels = [lv for lv in (rule.warn, rule.critical, rule.emergency) if lv is not None]
        if levels != sorted(levels):
            problems.append(
                Problem(
                    f"thresholds.{name}",
                    f"levels must not decrease: warn {rule.warn}, critical {rule.critical}, "
                    f"emergency {rule.emergency}",
                )
            )
    problems.extend(config.alerting.check())
    problems.extend(config.prometheus.check())
    problems.extend(config.collector.log.check())
    return problems


def _check_secret_file_mode(path: str, secret_paths: List[str]) -> List[Problem]:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return []
    if mode & 0o077 == 0:
        return []
    keys = ", ".join(secret_paths)
    return [
        Problem(
            "",
            f"{path} holds literal secrets ({keys}) but is mode {mode:04o}, readable by other "
            f"users. Fix it with: chmod 600 {path} (or reference the secrets as ${{ENV_VAR}})",
            fatal=True,
        )
    ]


def resolve_hostname(config: Config) -> str:
    if config.agent.hostname:
        return config.agent.hostname
    import socket

    return socket.gethostname()
