"""The agent's configuration: TOML -> typed dataclasses, defaults, ``${ENV}`` and validation.

Every key has a default, so the agent runs without a file. Problems are
collected, not raised one at a time: :func:`load_config` returns the config
(bad values replaced by their defaults) together with every :class:`Problem`.
Fatal problems — a file that cannot be parsed, a literal secret in a file
others can read — stop the agent; the rest are warnings at start-up and
errors for ``check-config``.

Each plugin module owns its section's frozen dataclass and each package's
registry lists its plugins (``collectors/registry.py``,
``analyzers/registry.py``, ``channels/registry.py``); the ``[collector]``,
``[analyzer]`` and ``[alerting]`` tables are derived from those registries
(:func:`~sysops_agent.plugins.sections_class`). This module sits just below
the daemon and the commands: it assembles the tables into :class:`Config`,
which is frozen. Command-line settings that win over the file
(:class:`Overrides`) are applied by :meth:`Overrides.apply`, at start-up and
again on every reload, so a SIGHUP never loses ``--procfs``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from sysops_agent.alerting.config import PipelineConfig, warn_channel_problems
from sysops_agent.analyzers.registry import AnalyzerConfig
from sysops_agent.analyzers.threshold import ThresholdRule, default_thresholds
from sysops_agent.channels.registry import CHANNELS, AlertingConfig
from sysops_agent.collectors.registry import COLLECTORS
from sysops_agent.exporters.config import PrometheusConfig, RemoteWriteConfig
from sysops_agent.logwatch.registry import LogWatchConfig
from sysops_agent.plugins import project, section_problems, sections_class
from sysops_agent.schema import Builder, Problem, opt
from sysops_agent.storage.config import StorageConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10
    import tomli as tomllib

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _label_names_problems(labels: Dict[str, str]) -> List[Problem]:
    """``[agent] labels`` names must be Prometheus label names, without the reserved ``__``."""
    import re

    bad = [k for k in labels if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", k) or k[:2] == "__"]
    if not bad:
        return []
    names = ", ".join(repr(k) for k in bad)
    return [Problem("agent.labels", f"not valid label names: {names} ([a-zA-Z_][a-zA-Z0-9_]*)")]


@dataclass(frozen=True)
class AgentConfig:
    hostname: str = opt("", help="name used in alerts; empty = the system hostname")
    log_level: str = opt("info", choices=LOG_LEVELS)
    log_file: str = opt("", help="empty = stderr")
    pid_file: str = opt("", help="empty = no PID file")
    data_dir: str = opt("/var/lib/sysops-agent", help="SQLite database and log cursors")
    proc_root: str = opt("/proc")
    sys_root: str = opt("/sys")
    etc_root: str = opt("/etc", help="where os-release lives (tests point it elsewhere)")
    labels: Dict[str, str] = opt(
        factory=dict,
        help="static labels (env, team, cluster) on every exported series and Alertmanager alert",
    )


#: ``[collector]``: one section per registered collector, then ``[collector.log]``
CollectorsConfig: Any = sections_class(
    "CollectorsConfig",
    COLLECTORS,
    extra=[("log", LogWatchConfig, opt(factory=LogWatchConfig))],
    module=__name__,
)


@dataclass(frozen=True)
class Config:
    agent: AgentConfig = opt(factory=AgentConfig)
    collector: CollectorsConfig = opt(factory=CollectorsConfig)
    thresholds: Dict[str, ThresholdRule] = opt(factory=default_thresholds)
    analyzer: AnalyzerConfig = opt(factory=AnalyzerConfig)
    storage: StorageConfig = opt(factory=StorageConfig)
    alerting: AlertingConfig = opt(factory=AlertingConfig)
    prometheus: PrometheusConfig = opt(factory=PrometheusConfig)
    remote_write: RemoteWriteConfig = opt(factory=RemoteWriteConfig)


@dataclass(frozen=True)
class Overrides:
    """Settings given on the command line; they win over the file, at start-up and on reload."""

    #: ``--procfs DIR``: read this tree instead of ``agent.proc_root``
    proc_root: Optional[str] = None

    def apply(self, config: Config) -> Config:
        """``config`` with these settings applied (a new object: configs are frozen)."""
        agent = config.agent
        if self.proc_root:
            agent = dataclasses.replace(agent, proc_root=self.proc_root)
        if agent is config.agent:
            return config
        return dataclasses.replace(config, agent=agent)


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
        # Only a value made of references alone keeps its secret out of the file:
        # "https://hooks.slack.com/services/${X}LITERALSECRET" still holds one.
        if not _ENV_REF.sub("", data):
            refs.add(path)

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                hint = (
                    " (systemd sets it for a unit with LoadCredential=; see deploy/"
                    "sysops-agent.service)"
                    if name == "CREDENTIALS_DIRECTORY"
                    else ""
                )
                problems.append(Problem(path, f"environment variable {name} is not set{hint}"))
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


def _read(path: str, problems: List[Problem]) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        problems.append(Problem("", f"cannot read {path}: {e.strerror or e}", fatal=True))
    except UnicodeDecodeError as e:
        problems.append(Problem("", f"{path} is not UTF-8 text: {e}", fatal=True))
    return None


def _merge(
    base: Dict[str, Any],
    extra: Dict[str, Any],
    origin: Dict[str, str],
    source: str,
    prefix: str = "",
) -> None:
    """``extra`` over ``base``: tables merge key by key, arrays of tables append, the rest replaces."""
    for key, value in extra.items():
        path = f"{prefix}.{key}" if prefix else key
        old = base.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            _merge(old, value, origin, source, path)
        elif (
            isinstance(value, list)
            and isinstance(old, list)
            and all(isinstance(x, dict) for x in value + old)
        ):  # [[analyzer.rules]], [[collector.log.custom_patterns]]: every file's entries count
            for i in range(len(value)):
                origin[f"{path}[{len(old) + i}]"] = source
            base[key] = old + value
        else:
            base[key] = value
            origin[path] = source


def origin_of(path: str, origin: Dict[str, str]) -> str:
    """The file that set ``path`` (or a table or array entry above it); "" for the main file."""
    best, found = "", ""
    for key, source in origin.items():
        if (path == key or path.startswith((key + ".", key + "["))) and len(key) >= len(best):
            best, found = key, source
    return found


def _includes(
    raw: Dict[str, Any], main: str, problems: List[Problem], origin: Dict[str, str]
) -> Dict[str, Any]:
    """Merge the files named by the top-level ``include`` globs, in order, into ``raw``."""
    patterns = raw.pop("include", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        problems.append(Problem("include", "expected a list of file paths or globs"))
        return raw
    import glob

    base_dir = os.path.dirname(os.path.abspath(main)) if main else os.getcwd()
    for i, pattern in enumerate(patterns):
        full = pattern if os.path.isabs(pattern) else os.path.join(base_dir, pattern)
        matches = sorted(glob.glob(full))
        if not matches and not glob.has_magic(full):
            problems.append(Problem(f"include[{i}]", f"{full} does not exist", fatal=True))
        for file in matches:
            text = _read(file, problems)
            if text is None:
                continue
            data, parse_problems = parse_toml(text, file)
            problems.extend(parse_problems)
            if "include" in data:
                problems.append(
                    Problem("include", "an included file cannot include others", source=file)
                )
                data.pop("include")
            _merge(raw, data, origin, file)
    return raw


def load_config(
    path: Optional[str | os.PathLike[str]] = None,
    env: Optional[Dict[str, str]] = None,
    text: Optional[str] = None,
    overrides: Optional[Overrides] = None,
) -> LoadResult:
    """Read, expand, validate, apply ``overrides``. Never raises for bad content: problems are returned."""
    env = dict(os.environ) if env is None else env
    problems: List[Problem] = []
    raw: Dict[str, Any] = {}
    source = str(path) if path is not None else "<config>"
    if text is None and path is not None:
        text = _read(source, problems)
    #: key path -> the included file that set it (keys of the main file are absent)
    origin: Dict[str, str] = {}
    if text is not None:
        raw, parse_problems = parse_toml(text, source)
        problems.extend(parse_problems)
        if "include" in raw:
            raw = _includes(raw, source if path is not None else "", problems, origin)
    refs: set[str] = set()
    raw = expand_env(raw, "", env, problems, refs)
    builder = Builder()
    config = builder.build(Config, raw, "")
    if overrides is not None:
        config = overrides.apply(config)
    problems.extend(builder.problems)
    # A bad value already reported is not reported again by a cross-check.
    seen = {p.path for p in problems}
    problems.extend(p for p in _cross_checks(config) if p.path not in seen)
    if origin:  # name the included file that holds each bad key
        problems = [
            dataclasses.replace(p, source=origin_of(p.path, origin)) if not p.source else p
            for p in problems
        ]
    literal = [p for p in builder.secret_values if p not in refs and p not in builder.secret_files]
    if literal and path is not None and text is not None:
        by_file: Dict[str, List[str]] = {}
        for key in literal:
            by_file.setdefault(origin_of(key, origin) or os.fspath(path), []).append(key)
        for file, keys in by_file.items():
            problems.extend(_check_secret_file_mode(file, sorted(keys)))
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
    problems.extend(section_problems(CHANNELS, config.alerting, "alerting"))
    problems.extend(
        warn_channel_problems(
            project(config.alerting, PipelineConfig).warn_channels, [p.name for p in CHANNELS]
        )
    )
    problems.extend(config.prometheus.check())
    problems.extend(config.remote_write.check())
    problems.extend(config.collector.log.check())
    problems.extend(_label_names_problems(config.agent.labels))
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
