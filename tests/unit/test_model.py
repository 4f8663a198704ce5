"""Alert model helpers."""

from __future__ import annotations


def test_alert_ids_are_random_version_4_uuids() -> None:
    import uuid

    from sysops_agent.model import new_alert_id

    ids = {new_alert_id() for _ in range(1000)}
    assert len(ids) == 1000
    for text in list(ids)[:50]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
