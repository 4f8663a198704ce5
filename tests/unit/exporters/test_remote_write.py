"""remote_write: the protobuf and snappy encoders, the bounded queue, retries (issue 15 item 3).

The encoders are checked against independent decoders: ``cramjam``'s snappy
(a dev dependency) and a protobuf reader written from the wire-format spec;
``tests/integration/test_prometheus_real.py`` sends to the real Prometheus.
"""

from __future__ import annotations

import random
import struct
from typing import Any, Dict, List, Tuple

import pytest

from sysops_agent import httpclient
from sysops_agent.clock import VirtualClock
from sysops_agent.config import load_config
from sysops_agent.exporters.config import RemoteWriteConfig
from sysops_agent.exporters.remote_write import (
    RemoteWriter,
    encode_write_request,
    snappy_compress,
)
from sysops_agent.model import make_labels
from sysops_agent.storage.store import Store
from tests.support.httpserver import mock_transport, response

T0 = 1_700_000_000.0


class AutoClock(VirtualClock):
    """A virtual clock whose sleeps pass at once (the backoff is read from it)."""

    async def sleep(self, seconds: float) -> None:
        self.set(self.time() + seconds)


def snappy_decompress(data: bytes) -> bytes:
    cramjam = pytest.importorskip("cramjam")
    return bytes(cramjam.snappy.decompress_raw(data))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"a",
        b"abc" * 1000,
        bytes(range(256)) * 300,
        b"x" * 70000,
        random.Random(7).randbytes(5000),
        b"".join(b"sysops_disk_usage_ratio mountpoint=/srv/%d " % i for i in range(2000)),
    ],
)
def test_snappy_round_trips_through_an_independent_decoder(data: bytes) -> None:
    packed = snappy_compress(data)
    assert snappy_decompress(packed) == data


def test_snappy_compresses_repetitive_payloads() -> None:
    data = b"".join(
        b"__name__sysops_net_rx_bytes_per_second device eth%d" % (i % 4) for i in range(500)
    )
    assert len(snappy_compress(data)) < len(data) / 5


def _read_varint(buf: bytes, i: int) -> Tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def _fields(buf: bytes) -> List[Tuple[int, Any]]:
    """A protobuf message's (field number, value) pairs: wire types 0, 1, 2 only."""
    out: List[Tuple[int, Any]] = []
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(buf, i)
        elif wire == 1:
            value = struct.unpack("<d", buf[i : i + 8])[0]
            i += 8
        elif wire == 2:
            n, i = _read_varint(buf, i)
            value = buf[i : i + n]
            i += n
        else:  # pragma: no cover
            raise AssertionError(f"wire type {wire}")
        out.append((number, value))
    return out


def decode(body: bytes) -> Dict[Tuple[Tuple[str, str], ...], List[Tuple[int, float]]]:
    series: Dict[Tuple[Tuple[str, str], ...], List[Tuple[int, float]]] = {}
    for number, ts in _fields(snappy_decompress(body)):
        assert number == 1
        labels: List[Tuple[str, str]] = []
        samples: List[Tuple[int, float]] = []
        for n, part in _fields(ts):
            inner = dict(_fields(part))
            if n == 1:
                labels.append((inner[1].decode(), inner[2].decode()))
            else:
                samples.append((inner.get(2, 0), inner.get(1, 0.0)))
        assert labels == sorted(labels)
        series[tuple(labels)] = samples
    return series


def test_write_request_wire_format() -> None:
    body = encode_write_request([((("__name__", "up"), ("job", "x")), [(1000, 1.5), (2000, -2.0)])])
    (ts,) = [v for n, v in _fields(body)]
    parts = _fields(ts)
    assert [n for n, _ in parts] == [1, 1, 2, 2]
    assert dict(_fields(parts[0][1])) == {1: b"__name__", 2: b"up"}
    assert dict(_fields(parts[2][1])) == {1: 1.5, 2: 1000}


class Endpoint:
    def __init__(self, statuses: List[int]) -> None:
        self.statuses = statuses
        self.bodies: List[bytes] = []
        self.headers: List[httpclient.Headers] = []

    def __call__(self, request: httpclient.Request) -> httpclient.Response:
        self.bodies.append(request.content)
        self.headers.append(request.headers)
        status = self.statuses.pop(0) if self.statuses else 204
        return response(status, "nope" if status >= 300 else "")


def writer(store: Store, endpoint: Endpoint, clock: AutoClock, **cfg: Any) -> RemoteWriter:
    config = RemoteWriteConfig(enabled=True, url="http://prom.test/api/v1/write", **cfg)
    return RemoteWriter(
        config,
        store,
        clock,
        hostname="web-1",
        labels={"env": "prod"},
        transport=mock_transport(endpoint),
    )


async def test_new_points_are_sent_once_with_our_names_and_labels() -> None:
    store = Store()
    clock = AutoClock(T0)
    endpoint = Endpoint([])
    w = writer(store, endpoint, clock, external_labels={"cluster": "eu-1"})
    store.add(T0, "memory_usage_percent", 50.0)
    store.add(T0, "net_rx_bytes_per_second", 10.0, make_labels(interface="eth0"))
    store.add(T0 + 10, "memory_usage_percent", 60.0)
    try:
        assert w.collect() == 3
        assert await w.flush()
        assert w.collect() == 0  # nothing new: nothing re-sent
        store.add(T0 + 20, "memory_usage_percent", 70.0)
        assert w.collect() == 1
        assert await w.flush()
    finally:
        await w.aclose()
    first = decode(endpoint.bodies[0])
    common = (("cluster", "eu-1"), ("env", "prod"), ("instance", "web-1"), ("job", "sysops-agent"))
    mem = tuple(sorted((*common, ("__name__", "sysops_memory_usage_ratio"))))
    assert first[mem] == [(int(T0 * 1000), 0.5), (int((T0 + 10) * 1000), 0.6)]
    rx = tuple(
        sorted((*common, ("__name__", "sysops_net_rx_bytes_per_second"), ("device", "eth0")))
    )
    assert first[rx] == [(int(T0 * 1000), 10.0)]
    assert decode(endpoint.bodies[1]) == {mem: [(int((T0 + 20) * 1000), pytest.approx(0.7))]}
    headers = endpoint.headers[0]
    assert headers["content-encoding"] == "snappy"
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["x-prometheus-remote-write-version"] == "0.1.0"
    assert w.sent == 4


async def test_retried_with_backoff_on_5xx_and_429_dropped_on_4xx() -> None:
    store = Store()
    clock = AutoClock(T0)
    endpoint = Endpoint([503, 429, 204, 400])
    w = writer(store, endpoint, clock, max_samples_per_send=1)
    store.add(T0, "load_avg_1m", 1.0)
    store.add(T0, "load_avg_5m", 1.0)
    try:
        w.collect()
        assert await w.flush()
    finally:
        await w.aclose()
    assert len(endpoint.bodies) == 4
    assert (w.sent, w.dropped, w.failed_sends) == (1, 1, 2)
    assert clock.time() == T0 + 1 + 2  # backoff 1 s, then 2 s


async def test_a_dead_endpoint_keeps_the_queue_bounded() -> None:
    store = Store()
    clock = AutoClock(T0)
    endpoint = Endpoint([503] * 1000)
    w = writer(store, endpoint, clock, max_queued_samples=100)
    try:
        for step in range(30):
            for i in range(10):
                store.add(T0 + step, f"m{i}_bytes", float(step))
            w.collect()
            assert not await w.flush()  # gives up after the longest backoff; tries next time
            assert len(w.queue) <= 100
    finally:
        await w.aclose()
    assert w.dropped == 30 * 10 - 100


async def test_basic_auth_from_a_file_and_bearer_token(tmp_path: Any) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    store = Store()
    store.add(T0, "load_avg_1m", 1.0)
    for cfg, expected in (
        (
            {"basic_auth_username": "u", "basic_auth_password_file": str(secret)},
            "Basic dTpzM2NyZXQ=",
        ),
        ({"bearer_token": "tok"}, "Bearer tok"),
    ):
        endpoint = Endpoint([])
        w = writer(store, endpoint, AutoClock(T0), **cfg)
        try:
            w.collect()
            await w.flush()
        finally:
            await w.aclose()
        assert endpoint.headers[0]["authorization"] == expected


def test_config_checks() -> None:
    text = '[remote_write]\nenabled = true\nurl = "prom:9090"\n'
    assert [p.path for p in load_config(text=text, env={}).problems] == ["remote_write.url"]
    ok = '[remote_write]\nenabled = true\nurl = "http://prom:9090/api/v1/write"\n'
    assert load_config(text=ok, env={}).problems == []
