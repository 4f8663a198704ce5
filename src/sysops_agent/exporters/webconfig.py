"""TLS and basic auth for ``/metrics`` from an exporter-toolkit web config file.

The file is the one node_exporter and Prometheus read with
``--web.config.file`` (``prometheus.web_config_file`` here)::

    tls_server_config:
      cert_file: /etc/sysops-agent/tls.crt      # relative paths: to this file
      key_file: /etc/sysops-agent/tls.key
      client_auth_type: RequireAndVerifyClientCert   # optional
      client_ca_file: /etc/sysops-agent/clients.pem   # with the above
      min_version: TLS12                        # optional (TLS10..TLS13)
      max_version: TLS13                        # optional
    basic_auth_users:
      prometheus: $2y$10$...                    # bcrypt hash (htpasswd -nBC 10 "")

Reading it needs PyYAML, and ``basic_auth_users`` needs bcrypt: both come
with the optional extra ``sysops-agent[exporter-web]``. A file that cannot be
honoured in full (extra missing, unknown key, unreadable certificate) is a
:class:`WebConfigError`, and the exporter does not start: never an open
endpoint in place of a protected one. Settings of exporter-toolkit we do not
implement (``cipher_suites``, ``curve_preferences``, ``http_server_config``
headers, client auth types without verification) are refused the same way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Optional, Set, Tuple

if TYPE_CHECKING:
    import ssl

EXTRA_HINT = "pip install 'sysops-agent[exporter-web]'"

#: successful (user, sha256(password)) checks remembered, so that a scrape every
#: 15 s does not pay a bcrypt round (~50 ms at cost 10) each time
AUTH_CACHE_SIZE = 64

_TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
}
_CLIENT_AUTH = {
    "NoClientCert": "none",
    "VerifyClientCertIfGiven": "optional",
    "RequireAndVerifyClientCert": "required",
}
_TLS_VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")


class WebConfigError(ValueError):
    """The web config file cannot be honoured as written."""


@dataclass
class WebConfig:
    path: str
    cert_file: str = ""
    key_file: str = ""
    client_auth: str = "none"
    client_ca_file: str = ""
    min_version: str = ""
    max_version: str = ""
    #: user -> bcrypt hash
    users: Dict[str, bytes] = field(default_factory=dict)
    _verified: Set[Tuple[str, bytes]] = field(default_factory=set, repr=False)

    @property
    def tls(self) -> bool:
        return bool(self.cert_file)

    def ssl_context(self) -> Optional[ssl.SSLContext]:
        """The server context, or None without ``tls_server_config``; errors are :class:`WebConfigError`."""
        if not self.tls:
            return None
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as e:
            raise WebConfigError(
                f"{self.path}: tls_server_config: cert_file {self.cert_file} / key_file "
                f"{self.key_file}: {getattr(e, 'strerror', None) or e}"
            ) from None
        if self.client_ca_file:
            try:
                ctx.load_verify_locations(self.client_ca_file)
            except (OSError, ssl.SSLError) as e:
                raise WebConfigError(
                    f"{self.path}: tls_server_config: client_ca_file {self.client_ca_file}: "
                    f"{getattr(e, 'strerror', None) or e}"
                ) from None
        ctx.verify_mode = {
            "none": ssl.CERT_NONE,
            "optional": ssl.CERT_OPTIONAL,
            "required": ssl.CERT_REQUIRED,
        }[self.client_auth]
        versions = {
            "TLS10": ssl.TLSVersion.TLSv1,
            "TLS11": ssl.TLSVersion.TLSv1_1,
            "TLS12": ssl.TLSVersion.TLSv1_2,
            "TLS13": ssl.TLSVersion.TLSv1_3,
        }
        # exporter-toolkit's default minimum is TLS 1.2
        ctx.minimum_version = versions[self.min_version or "TLS12"]
        if self.max_version:
            ctx.maximum_version = versions[self.max_version]
        return ctx

    def authorized(self, header: Optional[str]) -> bool:
        """True when no users are configured or ``Authorization: Basic`` matches one."""
        if not self.users:
            return True
        if not header or header[:6].lower() != "basic ":
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        hashed = self.users.get(user)
        if not sep or hashed is None:
            return False
        key = (user, hashlib.sha256(password.encode()).digest())
        if key in self._verified:
            return True
        import bcrypt

        ok = bool(bcrypt.checkpw(password.encode(), hashed))
        if ok:
            if len(self._verified) >= AUTH_CACHE_SIZE:
                self._verified.clear()
            self._verified.add(key)
        return ok


def _expect_str(path: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise WebConfigError(f"{path}: {key} must be a string")
    return value


def parse_web_config(path: str, data: Any) -> WebConfig:
    """A :class:`WebConfig` from the parsed YAML ``data`` of ``path``.

    Long on purpose: exporter-toolkit's web-config format key by key, each with its own
    error.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise WebConfigError(f"{path}: expected a mapping at the top level")
    unknown = set(data) - {"tls_server_config", "basic_auth_users", "http_server_config"}
    if unknown:
        raise WebConfigError(f"{path}: unknown or unsupported keys: {', '.join(sorted(unknown))}")
    base = os.path.dirname(os.path.abspath(path))

    def resolve(p: str) -> str:
        return p if not p or os.path.isabs(p) else os.path.join(base, p)

    config = WebConfig(path)
    http = data.get("http_server_config") or {}
    if not isinstance(http, dict) or set(http) - {"http2"}:
        raise WebConfigError(
            f"{path}: http_server_config: only http2 is accepted (and ignored: HTTP/1.1 only)"
        )
    tls = data.get("tls_server_config")
    if tls is not None:
        if not isinstance(tls, dict):
            raise WebConfigError(f"{path}: tls_server_config must be a mapping")
        unknown = set(tls) - _TLS_KEYS
        if unknown:
            raise WebConfigError(
                f"{path}: tls_server_config: unsupported keys: {', '.join(sorted(unknown))}"
            )
        config.cert_file = resolve(_expect_str(path, "cert_file", tls.get("cert_file", "")))
        config.key_file = resolve(_expect_str(path, "key_file", tls.get("key_file", "")))
        if not config.cert_file or not config.key_file:
            raise WebConfigError(f"{path}: tls_server_config needs cert_file and key_file")
        auth = _expect_str(path, "client_auth_type", tls.get("client_auth_type", "NoClientCert"))
        if auth not in _CLIENT_AUTH:
            raise WebConfigError(
                f"{path}: client_auth_type {auth!r} is not supported "
                f"(use one of {', '.join(_CLIENT_AUTH)})"
            )
        config.client_auth = _CLIENT_AUTH[auth]
        config.client_ca_file = resolve(
            _expect_str(path, "client_ca_file", tls.get("client_ca_file", ""))
        )
        if config.client_auth != "none" and not config.client_ca_file:
            raise WebConfigError(f"{path}: client_auth_type {auth} needs client_ca_file")
        for key in ("min_version", "max_version"):
            version = _expect_str(path, key, tls.get(key, ""))
            if version and version not in _TLS_VERSIONS:
                raise WebConfigError(f"{path}: {key} must be one of {', '.join(_TLS_VERSIONS)}")
            setattr(config, key, version)
    users = data.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise WebConfigError(f"{path}: basic_auth_users must be a mapping of user: bcrypt hash")
    for user, hashed in users.items():
        text = _expect_str(path, f"basic_auth_users.{user}", hashed)
        if not text.startswith(("$2a$", "$2b$", "$2y$")):
            raise WebConfigError(f"{path}: basic_auth_users.{user} is not a bcrypt hash")
        config.users[str(user)] = text.encode()
    if config.users:
        try:
            import bcrypt  # noqa: F401
        except ImportError:
            raise WebConfigError(
                f"{path}: basic_auth_users needs the bcrypt module: {EXTRA_HINT}"
            ) from None
    return config


def load_web_config(path: str) -> WebConfig:
    """Read and check ``path``; every problem is a :class:`WebConfigError` naming it."""
    try:
        import yaml
    except ImportError:
        raise WebConfigError(
            f"{path}: reading a web config file needs PyYAML: {EXTRA_HINT}"
        ) from None
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise WebConfigError(f"{path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise WebConfigError(f"{path}: not valid YAML: {e}") from None
    config = parse_web_config(path, data)
    config.ssl_context()  # certificate and key readable and matching, or an error now
    return config
