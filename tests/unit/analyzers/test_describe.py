"""How alert messages name a series."""

from __future__ import annotations

import pytest

from sysops_agent.analyzers.describe import gone_phrase, subject
from sysops_agent.model import SeriesKey, make_labels


@pytest.mark.parametrize(
    ("metric", "labels", "expected"),
    [
        ("cpu_usage_percent", {}, "CPU usage"),
        ("disk_usage_percent", {"mountpoint": "/srv", "device": "sda1"}, "disk /srv"),
        ("disk_write_bytes_per_second", {"device": "sda"}, "disk sda writes"),
        ("disk_read_await_seconds", {"device": "nvme0n1"}, "disk nvme0n1 read latency"),
        ("disk_io_util_percent", {"device": "sdb"}, "disk sdb busy time"),
        ("net_rx_errors_per_second", {"interface": "eth0"}, "interface eth0 receive errors"),
        ("process_rss_bytes", {"pid": "4121", "name": "postgres"}, "postgres (pid 4121) RSS"),
        ("some_new_metric", {"x": "1"}, 'some_new_metric{x="1"}'),
    ],
)
def test_subject_words_a_series_for_a_person(metric: str, labels: dict, expected: str) -> None:
    assert subject(SeriesKey(metric, make_labels(**labels))) == expected


def test_a_vanished_disk_is_named() -> None:
    key = SeriesKey("disk_write_bytes_per_second", make_labels(device="sdb"))
    assert gone_phrase(key) == "device sdb gone"
