"""Where secrets may come from (issue 18 item 5): ``${VAR}`` alone keeps a secret out of
the file, literal text beside a reference does not; ``<key>_file`` (Prometheus' and
Alertmanager's form) and systemd credentials (``$CREDENTIALS_DIRECTORY``)."""

from __future__ import annotations

import re
from pathlib import Path

from sysops_agent.config import load_config

URL = "https://hooks.slack.com/services/T0/B0/FILESECRET"


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f"[alerting.slack]\nenabled = true\n{body}\n")
    path.chmod(0o644)
    return path


def secret_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_literal_text_next_to_a_reference_is_a_literal_secret(tmp_path: Path) -> None:
    path = config(tmp_path, 'webhook_url = "https://hooks.slack.com/services/${X}LITERALSECRET"')
    loaded = load_config(path, env={"X": "T0/"})
    assert len(loaded.fatal) == 1, loaded.problems
    message = str(loaded.fatal[0])
    assert "alerting.slack.webhook_url" in message and "chmod 600" in message
    assert "LITERALSECRET" not in message


def test_references_alone_need_no_0600(tmp_path: Path) -> None:
    path = config(tmp_path, 'webhook_url = "${A}${B}"')
    loaded = load_config(path, env={"A": "https://hooks.slack.com/", "B": "services/T/B/x"})
    assert loaded.problems == []


def test_a_secret_from_a_file_key(tmp_path: Path) -> None:
    secret = secret_file(tmp_path / "slack_url", URL + "\n")
    loaded = load_config(config(tmp_path, f'webhook_url_file = "{secret}"'), env={})
    assert loaded.problems == []  # the config file may be 0644: the secret is not in it
    assert loaded.config.alerting.slack.webhook_url == URL
    assert loaded.secrets == {"alerting.slack.webhook_url": URL}  # so it is redacted


def test_a_secret_file_every_user_can_read_is_refused(tmp_path: Path) -> None:
    secret = secret_file(tmp_path / "slack_url", URL, 0o644)
    loaded = load_config(config(tmp_path, f'webhook_url_file = "{secret}"'), env={})
    fatal = [str(p) for p in loaded.fatal]
    assert len(fatal) == 1 and "alerting.slack.webhook_url_file" in fatal[0]
    assert f"chmod o-rwx {secret}" in fatal[0] and "FILESECRET" not in fatal[0]


def test_a_missing_secret_file_and_both_keys_are_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    loaded = load_config(config(tmp_path, f'webhook_url_file = "{missing}"'), env={})
    assert [str(p) for p in loaded.fatal] == [
        f"alerting.slack.webhook_url_file: cannot read {missing}: No such file or directory"
    ]
    secret = secret_file(tmp_path / "slack_url", URL)
    both = f'webhook_url = "${{U}}"\nwebhook_url_file = "{secret}"'
    loaded = load_config(config(tmp_path, both), env={"U": "https://x.invalid/"})
    assert any(
        re.search(r"either webhook_url or webhook_url_file", str(p)) for p in loaded.problems
    )
    assert loaded.config.alerting.slack.webhook_url == URL


def test_a_systemd_credential(tmp_path: Path) -> None:
    # What systemd does for LoadCredential=slack_url:/etc/...: a private directory
    # holding the file, named by $CREDENTIALS_DIRECTORY in the service's environment.
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o500)
    secret_file(creds / "slack_url", URL, 0o400)
    path = config(tmp_path, 'webhook_url_file = "${CREDENTIALS_DIRECTORY}/slack_url"')
    loaded = load_config(path, env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert loaded.problems == [] and loaded.config.alerting.slack.webhook_url == URL
    unset = load_config(path, env={})
    assert any("LoadCredential=" in str(p) for p in unset.problems), unset.problems


def test_the_unit_shows_load_credential() -> None:
    from tests.support.paths import ROOT

    unit = (ROOT / "deploy" / "sysops-agent.service").read_text()
    assert re.search(r"^#\s*LoadCredential=\S+:/etc/sysops-agent/", unit, re.M)
    assert '_file = "${CREDENTIALS_DIRECTORY}/' in unit
