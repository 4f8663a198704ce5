"""The Alertmanager channel: ``POST {url}/api/v2/alerts`` (SPEC §6, fleet path).

One Alertmanager alert per agent alert, identified (as Alertmanager does) by
its label set, which follows the conventions Alertmanager configs and
``amtool`` users rely on (issue 15):

- ``alertname``: ``Sysops`` + the metric and the analyzer in CamelCase
  without repeated words, e.g. ``cpu_usage_percent`` from ``threshold`` ->
  ``SysopsCpuUsagePercentThreshold``, ``log_oom_kill`` from ``log`` ->
  ``SysopsLogOomKill``, the test alert ``SysopsAgentTest``
  (:func:`alert_name`);
- ``severity`` in Alertmanager's vocabulary, ``critical``/``warning``/``info``
  (emergency is critical; the agent's own level is kept in ``level``), so the
  usual inhibit rules and ``amtool alert query severity=warning`` work;
- ``instance`` (``instance`` in the section, default the host name), the
  static ``[agent] labels`` (env, team, …), ``metric``, and the alert's
  bounded labels (``device``, ``mountpoint``, ``pattern``, ``process``…).
  Unbounded values — log lines, pids, counts — are annotations, not labels,
  so that every log line is not its own alert. An alert label whose name is
  one of ours is kept as ``exported_<name>``; names are made valid.

Annotations: ``summary``, ``description`` and ``runbook_url`` (templates, per
metric or alertname in the config), ``message``, ``value``, ``threshold``,
``analyzer``, ``duration`` when known, and the unbounded values above.
``startsAt`` is when the alert fired.

Every alert goes to every URL of ``url``/``urls`` (an Alertmanager HA pair
de-duplicates, as with Prometheus), with basic auth or a bearer token when
configured (inline, or read from a ``*_file``).

Alertmanager forgets an alert that is not re-sent: a firing alert without
``endsAt`` resolves itself after ``resolve_timeout``. So this channel
remembers what it has delivered and a background task (started on the first
``send``, cancelled by :meth:`aclose`, driven by the :class:`Clock`) re-sends:

- every firing alert every ``resend_interval_secs``, with ``endsAt`` =
  now + 4 × the interval (what Prometheus does): if the agent stops, the
  alert resolves itself a few minutes later instead of firing forever;
- every resolved alert, with ``endsAt`` = the time it resolved, on each tick
  for ``resolved_resend_secs`` (a lost "resolved" must not leave a stale alert).

Alerts that never resolve — log matches (analyzer ``log``), rate-limit
summaries, ``test-alert`` — are *events*: sent once with ``endsAt`` = their
time + 4 × the interval, not re-sent, so they leave Alertmanager by
themselves a few minutes later.

The Watchdog (``watchdog = true``, the default): the daemon calls
:meth:`AlertmanagerChannel.start_watchdog` at start-up and the channel keeps
an always-firing ``SysopsAgentWatchdog`` alert (labels ``alertname``,
``instance``, ``severity = "none"``) in every re-send round, with ``endsAt``
= now + 4 × the interval, like Prometheus' ``Watchdog``. A stopped or killed
agent stops refreshing it and Alertmanager ends it a few minutes later; route
it to a dead-man's-switch receiver to be paged about a dead agent.

The pipeline's rate limiter does not apply to this channel
(``rate_limited = False``): Alertmanager groups and throttles notifications
itself, and a held-back "resolved" would leave an alert firing there.

The agent's analyzers keep one severity per series: a new firing at another
severity (escalation) or a resolved notice ends the alerts of the other
severities of the same series, so Alertmanager never shows a stale ``warn``
beside the current ``critical``.

Besides the channel contract (:mod:`sysops_agent.alerting.channel`, through
``channels.base``), this module imports one name from the pipeline:
:data:`sysops_agent.alerting.ratelimit.SUMMARY_ANALYZER`, the analyzer of the
rate limiter's summary alerts, which are events here (a downward import).

Size: the Alertmanager API v2 client plus the label and annotation conventions
(severity mapping, alertname, templates, HA URLs, auth, the watchdog), which
all shape one payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from sysops_agent.channels.base import SEVERITIES, ChannelContext, ChannelError, missing
from sysops_agent.channels.http import HttpChannel
from sysops_agent.clock import Clock
from sysops_agent.model import EVENT_ANALYZERS, Alert, AlertState, Severity, iso_utc
from sysops_agent.redact import Redactor
from sysops_agent.schema import Problem, opt

if TYPE_CHECKING:
    from sysops_agent.httpclient import Transport

log = logging.getLogger(__name__)

API_PATH = "/api/v2/alerts"
#: Prometheus sets endsAt of a firing alert to now + 4 resend intervals; so do we.
ENDS_AT_INTERVALS = 4
#: At most this many alerts in one POST (Alertmanager has no hard limit; keep requests small).
MAX_ALERTS_PER_POST = 500
#: Remember at most this many alerts for re-sending (a runaway analyzer cannot eat memory).
MAX_TRACKED = 10_000
#: The always-firing alert of a running agent (the dead-man's switch, as Prometheus' Watchdog).
WATCHDOG_ALERTNAME = "SysopsAgentWatchdog"
#: Labels set by the channel; an alert label with one of these names becomes exported_<name>.
RESERVED_LABELS = ("alertname", "instance", "severity", "level", "metric")
#: Alert labels whose values are unbounded (a new value per event): sent as annotations
UNBOUNDED_LABELS = frozenset({"line", "pid", "count", "address", "seconds", "source", "tid"})
#: Our severities in Alertmanager's conventional vocabulary
ALERTMANAGER_SEVERITY = {
    Severity.INFO: "info",
    Severity.WARN: "warning",
    Severity.CRITICAL: "critical",
    Severity.EMERGENCY: "critical",
}
#: the ``summary`` and ``description`` templates when the config sets none
DEFAULT_SUMMARY = "{message}"
DEFAULT_DESCRIPTION = (
    "{metric} = {value} on {instance} ({analyzer}, threshold {threshold}, level {level})"
)

_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_WORD = re.compile(r"[A-Za-z0-9]+")


def _camel(text: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in _WORD.findall(text))


def alert_name(metric: str, analyzer: str) -> str:
    """``cpu_usage_percent`` + ``threshold`` -> ``SysopsCpuUsagePercentThreshold``.

    No stutter: a leading ``sysops`` of the metric is dropped, and the analyzer
    is not appended when the metric already names it (``log_oom_kill`` +
    ``log`` -> ``SysopsLogOomKill``; ``sysops_agent_test`` + ``test`` ->
    ``SysopsAgentTest``).
    """
    words = [w.lower() for w in _WORD.findall(metric)]
    if words and words[0] == "sysops":
        words = words[1:]
    extra = [w.lower() for w in _WORD.findall(analyzer)]
    if not all(w in words for w in extra):
        words += [w for w in extra if w not in words]
    return "Sysops" + "".join(w[:1].upper() + w[1:] for w in words)


def label_name(name: str) -> str:
    name = _INVALID_LABEL_CHARS.sub("_", name)
    if not name or name[0].isdigit():
        name = "_" + name
    return name


def alert_labels(
    alert: Alert, instance: str = "", static: Optional[Mapping[str, str]] = None
) -> Dict[str, str]:
    """The Alertmanager label set (the alert's identity there).

    ``instance`` replaces the host name; ``static`` (``[agent] labels``) come
    first, so the alert's own labels win over them.
    """
    labels = {label_name(k): v for k, v in (static or {}).items()}
    labels.update(
        alertname=alert_name(alert.metric, alert.analyzer),
        instance=instance or alert.hostname,
        severity=ALERTMANAGER_SEVERITY.get(alert.severity, alert.severity.label),
        level=alert.severity.label,
        metric=alert.metric,
    )
    for key, value in alert.labels:
        if key in UNBOUNDED_LABELS:
            continue
        name = label_name(key)
        if name in RESERVED_LABELS or name.startswith("__"):
            name = "exported_" + name.lstrip("_")
        if value:
            labels[name] = value
    return {k: v for k, v in labels.items() if v}


class _Blank(Dict[str, str]):
    """Template variables: an unknown ``{name}`` is left empty rather than an error."""

    def __missing__(self, key: str) -> str:
        return ""


def render_template(template: str, variables: Mapping[str, str]) -> str:
    """``template`` with ``{name}`` replaced; a malformed template is returned as is."""
    try:
        return template.format_map(_Blank(variables))
    except (ValueError, IndexError, AttributeError, KeyError):
        return template


def template_problem(template: str) -> Optional[str]:
    """Why ``template`` cannot be used (None when it can)."""
    try:
        template.format_map(_Blank())
    except (ValueError, IndexError, AttributeError, KeyError) as e:
        return f"not a valid template ({e}); use {{name}} placeholders, {{{{ for a brace"
    return None


def _number(value: float) -> str:
    return f"{value:.6g}"


def alert_annotations(
    alert: Alert,
    labels: Optional[Mapping[str, str]] = None,
    config: Optional[AlertmanagerChannelConfig] = None,
) -> Dict[str, str]:
    """``summary``/``description``/``runbook_url`` from the config's templates, and the details."""
    annotations = {
        "message": alert.message,
        "value": _number(alert.value),
        "threshold": _number(alert.threshold),
        "analyzer": alert.analyzer,
    }
    if alert.duration is not None:
        annotations["duration"] = f"{int(alert.duration)}s"
    for key, value in alert.labels:
        if key in UNBOUNDED_LABELS and value:
            annotations[key] = value
    variables = {**(labels or {}), **annotations}
    cfg = config or AlertmanagerChannelConfig()
    names = (alert.metric, variables.get("alertname", ""))

    def pick(per_name: Mapping[str, str], default: str) -> str:
        for name in names:
            if name in per_name:
                return per_name[name]
        return per_name.get("*", default)

    for key, per_name, default in (
        ("summary", cfg.summaries, cfg.summary),
        ("description", cfg.descriptions, cfg.description),
        ("runbook_url", cfg.runbook_urls, cfg.runbook_url),
    ):
        text = render_template(pick(per_name, default), variables)
        if text:
            annotations[key] = text
    return annotations


LabelKey = Tuple[Tuple[str, str], ...]


def _templates(value: Any) -> Optional[str]:
    texts = value.values() if isinstance(value, dict) else [value]
    for text in texts:
        problem = template_problem(str(text))
        if problem:
            return problem
    return None


@dataclass(frozen=True)
class AlertmanagerChannelConfig:
    enabled: bool = opt(False)
    url: str = opt("", help="base URL, e.g. http://127.0.0.1:9093")
    urls: List[str] = opt(
        factory=list, help="more Alertmanagers (an HA pair): every alert goes to each"
    )
    instance: str = opt("", help="the instance label; empty = the host name")
    summary: str = opt(DEFAULT_SUMMARY, validate=_templates, help="template, e.g. {message}")
    description: str = opt(DEFAULT_DESCRIPTION, validate=_templates)
    runbook_url: str = opt(
        "", validate=_templates, help="template, e.g. https://wiki/runbooks/{alertname}"
    )
    summaries: Dict[str, str] = opt(
        factory=dict, validate=_templates, help="per metric or alertname ('*': any)"
    )
    descriptions: Dict[str, str] = opt(factory=dict, validate=_templates)
    runbook_urls: Dict[str, str] = opt(factory=dict, validate=_templates)
    basic_auth_username: str = opt("")
    basic_auth_password: str = opt("", secret=True)
    basic_auth_password_file: str = opt("", help="a file holding the password")
    bearer_token: str = opt("", secret=True)
    bearer_token_file: str = opt("", help="a file holding the token")
    resend_interval_secs: float = opt(
        60.0, min=10, max=600, help="firing alerts are re-sent this often until resolved"
    )
    resolved_resend_secs: float = opt(
        300.0, min=0, max=3600, help="resolved alerts are re-sent on each tick for this long"
    )
    generator_url: str = opt("", help="optional link sent as generatorURL (e.g. a dashboard)")
    min_severity: str = opt("warn", choices=SEVERITIES)
    watchdog: bool = opt(
        True,
        help="send an always-firing SysopsAgentWatchdog alert while the agent runs"
        " (route it to a dead-man's-switch receiver: its absence means the agent is gone)",
    )

    def problems(self, path: str) -> List[Problem]:
        problems = [] if self.urls else missing(self, path, ["url"])
        if self.basic_auth_password and self.basic_auth_password_file:
            problems.append(
                Problem(
                    f"{path}.basic_auth_password_file", "set the password or its file, not both"
                )
            )
        if self.bearer_token and self.bearer_token_file:
            problems.append(
                Problem(f"{path}.bearer_token_file", "set the token or its file, not both")
            )
        if (self.bearer_token or self.bearer_token_file) and self.basic_auth_username:
            problems.append(
                Problem(f"{path}.bearer_token", "basic auth and a bearer token exclude each other")
            )
        return problems

    @property
    def all_urls(self) -> List[str]:
        out: List[str] = []
        for url in [self.url, *self.urls]:
            url = url.rstrip("/")
            if url and url not in out:
                out.append(url)
        return out


def _group_key(labels: Dict[str, str]) -> LabelKey:
    """Identity of the series an alert is about: its labels without the severity."""
    return tuple(sorted((k, v) for k, v in labels.items() if k not in ("severity", "level")))


def _read_secret_file(path: str, key: str) -> str:
    """The secret in ``path`` without its trailing newline (as Prometheus reads *_file)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    except OSError as e:
        raise ChannelError(
            f"alertmanager: cannot read {key} {path}: {e.strerror or e}", retryable=False
        ) from None


def auth_header(config: AlertmanagerChannelConfig) -> Optional[str]:
    """The ``Authorization`` value for the configured basic auth or bearer token, if any."""
    import base64

    if config.bearer_token or config.bearer_token_file:
        token = config.bearer_token or _read_secret_file(
            config.bearer_token_file, "bearer_token_file"
        )
        return f"Bearer {token}"
    if config.basic_auth_username:
        password = config.basic_auth_password
        if config.basic_auth_password_file:
            password = _read_secret_file(
                config.basic_auth_password_file, "basic_auth_password_file"
            )
        pair = f"{config.basic_auth_username}:{password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")
    return None


@dataclass
class Tracked:
    """One alert this channel has told Alertmanager about."""

    labels: Dict[str, str]
    annotations: Dict[str, str]
    starts_at: float
    #: None while firing; the time it resolved otherwise
    ends_at: Optional[float] = None

    def payload(self, now: float, resend_interval: float, generator_url: str) -> Dict[str, Any]:
        if self.ends_at is None:
            ends = now + ENDS_AT_INTERVALS * resend_interval
        else:
            ends = max(self.ends_at, self.starts_at)
        item: Dict[str, Any] = {
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": iso_utc(self.starts_at),
            "endsAt": iso_utc(ends),
        }
        if generator_url:
            item["generatorURL"] = generator_url
        return item


class AlertmanagerChannel(HttpChannel[AlertmanagerChannelConfig]):
    name = "alertmanager"
    supports_batch = True
    #: Alertmanager throttles by itself; the pipeline's token bucket is skipped
    rate_limited = False

    def __init__(
        self,
        config: AlertmanagerChannelConfig,
        *,
        clock: Clock,
        redactor: Optional[Redactor] = None,
        timeout: float = 10.0,
        transport: Optional[Transport] = None,
        labels: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(
            config, redactor=redactor, timeout=timeout, clock=clock, transport=transport
        )
        self.clock: Clock = clock
        self.urls = [u.rstrip("/") + API_PATH for u in config.all_urls]
        #: the first one (kept for callers that knew one URL only)
        self.url = self.urls[0] if self.urls else API_PATH
        self.instance = config.instance
        self.static_labels: Dict[str, str] = dict(labels or {})
        auth = auth_header(config)
        self._headers: Optional[Dict[str, str]] = {"Authorization": auth} if auth else None
        self._tracked: Dict[LabelKey, Tracked] = {}
        self._task: Optional[asyncio.Task[None]] = None
        #: the Watchdog alert once :meth:`start_watchdog` was called
        self._watchdog: Optional[Tracked] = None
        self._kick: Optional[asyncio.Task[None]] = None
        #: completed re-send rounds (for tests and the agent's status)
        self.resend_rounds = 0

    # -- state ---------------------------------------------------------------

    def tracked(self) -> List[Tracked]:
        return list(self._tracked.values())

    def _labels(self, alert: Alert) -> Dict[str, str]:
        return alert_labels(alert, self.instance, self.static_labels)

    def _annotations(self, alert: Alert, labels: Dict[str, str]) -> Dict[str, str]:
        return alert_annotations(alert, labels, self.config)

    def _record(self, alert: Alert) -> List[LabelKey]:
        """Update the remembered state with ``alert``; returns the keys to send now."""
        labels = self._labels(alert)
        key = tuple(sorted(labels.items()))
        group = _group_key(labels)
        changed: List[LabelKey] = []
        for other_key, other in self._tracked.items():
            if other.ends_at is not None or _group_key(other.labels) != group:
                continue
            if alert.state is AlertState.RESOLVED or other_key != key:
                other.ends_at = max(alert.timestamp, other.starts_at)
                changed.append(other_key)
        if alert.state is AlertState.FIRING:
            current = self._tracked.get(key)
            if current is not None and current.ends_at is None:
                current.annotations = self._annotations(alert, labels)
            else:
                self._tracked[key] = Tracked(
                    labels, self._annotations(alert, labels), alert.timestamp
                )
            changed.append(key)
        elif not changed:
            # Resolved, but we never saw it fire (e.g. the agent restarted): tell it anyway.
            started = alert.timestamp - (alert.duration or 0.0)
            annotations = self._annotations(alert, labels)
            self._tracked[key] = Tracked(labels, annotations, started, alert.timestamp)
            changed.append(key)
        elif key in self._tracked:
            # the resolved notice carries the final value and message
            self._tracked[key].annotations = self._annotations(alert, labels)
        self._bound()
        return changed

    def _bound(self) -> None:
        """Forget the oldest alerts beyond :data:`MAX_TRACKED`, resolved ones first."""
        excess = len(self._tracked) - MAX_TRACKED
        if excess <= 0:
            return
        order = sorted(
            self._tracked.items(), key=lambda kv: (kv[1].ends_at is None, kv[1].starts_at)
        )
        for key, _ in order[:excess]:
            del self._tracked[key]
        log.warning("alertmanager: tracking more than %d alerts; forgot the oldest", MAX_TRACKED)

    def _expire(self, now: float) -> None:
        keep = self.config.resolved_resend_secs
        for key in [
            k for k, t in self._tracked.items() if t.ends_at is not None and now - t.ends_at > keep
        ]:
            del self._tracked[key]

    def _payload(self, keys: Sequence[LabelKey]) -> List[Dict[str, Any]]:
        now = self.clock.time()
        return [
            self._tracked[k].payload(
                now, self.config.resend_interval_secs, self.config.generator_url
            )
            for k in keys
            if k in self._tracked
        ]

    # -- sending -------------------------------------------------------------

    def _event_payload(self, alert: Alert) -> Dict[str, Any]:
        ttl = ENDS_AT_INTERVALS * self.config.resend_interval_secs
        labels = self._labels(alert)
        event = Tracked(labels, self._annotations(alert, labels), alert.timestamp)
        event.ends_at = alert.timestamp + ttl
        return event.payload(self.clock.time(), ttl, self.config.generator_url)

    def secret_values(self, config: AlertmanagerChannelConfig) -> List[str]:
        # credentials in a URL (http://user:pass@host) must not reach a log line
        secrets = [u for u in config.all_urls if "@" in u]
        return secrets + [s for s in (config.basic_auth_password, config.bearer_token) if s]

    async def send(self, alerts: Sequence[Alert], *, mention: bool = False) -> None:
        keys: List[LabelKey] = []
        events: List[Dict[str, Any]] = []
        for alert in alerts:
            if alert.analyzer in EVENT_ANALYZERS:
                events.append(self._event_payload(alert))
                continue
            for key in self._record(alert):
                if key not in keys:
                    keys.append(key)
        if keys:
            self._ensure_resender()
        try:
            await self._post(self._payload(keys) + events)
        except ChannelError as exc:
            if not exc.retryable:
                # Alertmanager refused these alerts: re-sending them would fail the same way.
                for key in keys:
                    self._tracked.pop(key, None)
            raise

    async def _post(self, items: List[Dict[str, Any]]) -> None:
        """Every item to every Alertmanager; the first error after all were tried."""
        error: Optional[ChannelError] = None
        for url in self.urls:
            try:
                for start in range(0, len(items), MAX_ALERTS_PER_POST):
                    response = await self.request(
                        "POST",
                        url,
                        json=items[start : start + MAX_ALERTS_PER_POST],
                        headers=self._headers,
                    )
                    self.check(response)
            except ChannelError as exc:
                if len(self.urls) > 1:
                    log.warning("alertmanager: %s", exc)
                # a retryable failure wins: the pipeline then retries (Alertmanager dedups)
                if error is None or (exc.retryable and not error.retryable):
                    error = exc
        if error is not None:
            raise error

    # -- the Watchdog ----------------------------------------------------------

    def start_watchdog(self, hostname: str) -> None:
        """Send the always-firing Watchdog now and with every re-send round.

        Its ``endsAt`` is always now + 4 re-send intervals: when the agent stops
        (or is killed), nobody refreshes it and Alertmanager resolves it a few
        minutes later — which a dead-man's-switch route turns into a page.
        """
        labels = {"alertname": WATCHDOG_ALERTNAME, "instance": hostname, "severity": "none"}
        annotations = {
            "message": f"sysops-agent on {hostname} is running; this alert ends when it stops",
        }
        self._watchdog = Tracked(labels, annotations, self.clock.time())
        self._kick = asyncio.get_running_loop().create_task(
            self.resend_once(), name="alertmanager-watchdog"
        )
        self._ensure_resender()

    # -- re-sending ----------------------------------------------------------

    def _ensure_resender(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._resend_loop(), name="alertmanager-resend"
            )

    async def resend_once(self) -> None:
        """Re-send every remembered alert (firing, and recently resolved)."""
        self._expire(self.clock.time())
        items = self._payload(list(self._tracked))
        if self._watchdog is not None:
            now = self.clock.time()
            interval = self.config.resend_interval_secs
            items.append(self._watchdog.payload(now, interval, self.config.generator_url))
        if not items:
            return
        try:
            await self._post(items)
        except ChannelError as exc:
            log.warning("alertmanager: re-sending %d alerts failed: %s", len(self._tracked), exc)
        self.resend_rounds += 1

    async def _resend_loop(self) -> None:
        """Re-send until nothing is left to re-send (the next ``send`` starts it again)."""
        while self._tracked or self._watchdog is not None:
            await self.clock.sleep(self.config.resend_interval_secs)
            try:
                await self.resend_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the loop die: the next tick tries again
                log.exception("alertmanager: re-send failed")

    async def aclose(self) -> None:
        for task in (self._task, self._kick):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._kick = None
        await super().aclose()


def create(cfg: AlertmanagerChannelConfig, ctx: ChannelContext) -> AlertmanagerChannel:
    """The registry's factory for ``[alerting.alertmanager]``."""
    return AlertmanagerChannel(
        cfg,
        clock=ctx.clock,
        redactor=ctx.redactor,
        timeout=ctx.send_timeout_secs,
        labels=ctx.labels,
    )
