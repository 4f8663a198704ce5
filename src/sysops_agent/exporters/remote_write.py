"""``[remote_write]``: push every series to a Prometheus remote-write endpoint (protocol 1.0).

Hosts behind NAT or a firewall cannot be scraped; they push instead, to a
central Prometheus (``--web.enable-remote-write-receiver``), Mimir, Thanos
Receive or VictoriaMetrics. Every ``interval_secs`` the points the store
received since the last push (a cursor per series: ``RingBuffer.total``) are
queued; the queue is bounded (``max_queued_samples``: the oldest samples are
dropped and counted when the endpoint is down for long) and sent in batches
of ``max_samples_per_send``, retried with exponential backoff on network
errors, 429 and 5xx; a 4xx other than 429 drops the batch (it would fail the
same way again).

Series are named and scaled as on ``/metrics`` (``sysops_memory_usage_ratio``,
``device``/``cpu`` labels, ``[agent] labels``), plus ``instance`` (the host
name) and ``job`` unless ``external_labels`` set them, plus ``external_labels``.

Encoding without libraries: the ``WriteRequest`` message is four nested
fields, written by :func:`encode_write_request` (about 30 lines: the
``protobuf`` runtime costs megabytes of RSS and a generated module for it),
and the snappy block format is written by :func:`snappy_compress`, a small
greedy LZ77 encoder (no C extension to build or ship in the .pyz; a push every
30 s of a few hundred series is tens of KB). Both are checked against the
real Prometheus in ``tests/integration/`` and against ``cramjam``'s snappy
decoder in the unit tests. Nothing here is imported unless remote_write is on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import struct
from typing import TYPE_CHECKING, Deque, Dict, List, Mapping, Optional, Tuple

from sysops_agent import __version__
from sysops_agent.clock import Clock
from sysops_agent.exporters.config import RemoteWriteConfig
from sysops_agent.model import SeriesKey
from sysops_agent.storage.store import Store

if TYPE_CHECKING:
    from sysops_agent.httpclient import AsyncClient, Transport

log = logging.getLogger(__name__)

#: the first retry waits this long, doubling up to :data:`MAX_BACKOFF_SECS`
MIN_BACKOFF_SECS = 1.0
MAX_BACKOFF_SECS = 30.0

Labels = Tuple[Tuple[str, str], ...]
#: (labels with __name__, timestamp in ms, value)
QueuedSample = Tuple[Labels, int, float]


# --- protobuf ---------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_write_request(series: List[Tuple[Labels, List[Tuple[int, float]]]]) -> bytes:
    """``prometheus.WriteRequest{timeseries: [TimeSeries{labels, samples}]}``.

    Label{name=1, value=2}; Sample{value=1 (double), timestamp=2 (int64 ms)};
    TimeSeries{labels=1, samples=2}; WriteRequest{timeseries=1}. Labels must
    be sorted by name (the receiver checks it).
    """
    out = bytearray()
    for labels, samples in series:
        ts = bytearray()
        for name, value in labels:
            ts += _field(1, _field(1, name.encode()) + _field(2, value.encode()))
        for t_ms, v in samples:
            sample = b"\x09" + struct.pack("<d", v) + b"\x10" + _varint(t_ms & 0xFFFFFFFFFFFFFFFF)
            ts += _field(2, sample)
        out += _field(1, bytes(ts))
    return bytes(out)


# --- snappy -----------------------------------------------------------------


def _literal(data: bytes) -> bytes:
    n = len(data) - 1
    if n < 60:
        return bytes([n << 2]) + data
    if n < 1 << 8:
        return bytes([60 << 2, n]) + data
    if n < 1 << 16:
        return bytes([61 << 2]) + n.to_bytes(2, "little") + data
    if n < 1 << 24:
        return bytes([62 << 2]) + n.to_bytes(3, "little") + data
    return bytes([63 << 2]) + n.to_bytes(4, "little") + data


def _copy(offset: int, length: int) -> bytes:
    out = bytearray()
    while length > 0:  # copies with a 2-byte offset hold 1..64 bytes
        n = min(length, 64)
        if length - n and length - n < 4:
            n = length - 4  # leave at least 4 for the last piece (any length >= 1 is valid)
        out += bytes([((n - 1) << 2) | 2]) + offset.to_bytes(2, "little")
        length -= n
    return bytes(out)


def snappy_compress(data: bytes) -> bytes:
    """The snappy block format (what remote write's ``Content-Encoding: snappy`` means).

    Greedy matching of 4-byte sequences within the last 64 KiB (2-byte offsets).
    """
    out = bytearray(_varint(len(data)))
    table: Dict[bytes, int] = {}
    n = len(data)
    i = 0
    literal_start = 0
    while i + 4 <= n:
        key = data[i : i + 4]
        candidate = table.get(key)
        table[key] = i
        if candidate is None or i - candidate > 0xFFFF:
            i += 1
            continue
        length = 4
        while i + length < n and data[candidate + length] == data[i + length]:
            length += 1
        if literal_start < i:
            out += _literal(data[literal_start:i])
        out += _copy(i - candidate, length)
        i += length
        literal_start = i
    if literal_start < n:
        out += _literal(data[literal_start:])
    return bytes(out)


# --- the writer -------------------------------------------------------------


def _secret(value: str, path: str) -> str:
    if value or not path:
        return value
    with open(path, encoding="utf-8") as f:
        return f.read().rstrip("\r\n")


class RemoteWriter:
    """Queues the store's new points and pushes them; :meth:`run` until cancelled."""

    def __init__(
        self,
        config: RemoteWriteConfig,
        store: Store,
        clock: Clock,
        *,
        hostname: str,
        labels: Optional[Mapping[str, str]] = None,
        transport: Optional[Transport] = None,
    ) -> None:
        from sysops_agent.exporters.prometheus import RENAMED_LABELS, export_name, label_name

        self.config = config
        self.store = store
        self.clock = clock
        self._export_name = export_name
        self._label_name = label_name
        self._renamed = RENAMED_LABELS
        static = {label_name(k): v for k, v in (labels or {}).items()}
        static.setdefault("instance", hostname)
        static.setdefault("job", "sysops-agent")
        static.update({label_name(k): v for k, v in config.external_labels.items()})
        self.static = static
        self.queue: Deque[QueuedSample] = collections.deque()
        self._cursors: Dict[SeriesKey, int] = {}
        self._labels: Dict[SeriesKey, Tuple[Labels, float]] = {}
        self.sent = 0
        self.dropped = 0
        self.failed_sends = 0
        headers = {
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
            "User-Agent": f"sysops-agent/{__version__}",
        }
        token = _secret(config.bearer_token, config.bearer_token_file)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif config.basic_auth_username:
            import base64

            password = _secret(config.basic_auth_password, config.basic_auth_password_file)
            pair = f"{config.basic_auth_username}:{password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        self.headers = headers
        self._transport = transport
        self._client: Optional[AsyncClient] = None

    def _series_labels(self, key: SeriesKey) -> Tuple[Labels, float]:
        cached = self._labels.get(key)
        if cached is None:
            exported = self._export_name(key.metric)
            labels = dict(self.static)
            for k, v in key.labels:
                labels[self._label_name(self._renamed.get(k, k))] = v
            labels["__name__"] = exported.name
            cached = (tuple(sorted(labels.items())), exported.scale)
            self._labels[key] = cached
        return cached

    def collect(self) -> int:
        """Queue the points received since the last call; the number queued."""
        queued = 0
        live: Dict[SeriesKey, int] = {}
        for key, buf in self.store.series():
            seen = self._cursors.get(key, 0)
            total = buf.total
            live[key] = total
            if total <= seen:
                continue
            labels, scale = self._series_labels(key)
            for ts, value in buf.new_since(seen):
                self.queue.append((labels, int(ts * 1000), value * scale))
                queued += 1
        self._cursors = live
        if len(self._labels) > 2 * len(live) + 64:
            self._labels.clear()  # series churn (pids): keep the cache bounded
        excess = len(self.queue) - self.config.max_queued_samples
        if excess > 0:
            for _ in range(excess):
                self.queue.popleft()
            self.dropped += excess
            log.warning(
                "remote_write: queue full (%d samples): dropped the %d oldest",
                self.config.max_queued_samples,
                excess,
            )
        return queued

    def _client_for(self) -> AsyncClient:
        if self._client is None:
            from sysops_agent.httpclient import AsyncClient

            self._client = AsyncClient(
                timeout=self.config.timeout_secs,
                transport=self._transport,
                ca_file=self.config.ca_file,
            )
        return self._client

    def batch(self) -> List[QueuedSample]:
        n = min(len(self.queue), self.config.max_samples_per_send)
        return [self.queue[i] for i in range(n)]

    @staticmethod
    def encode(batch: List[QueuedSample]) -> bytes:
        by_series: Dict[Labels, List[Tuple[int, float]]] = {}
        for labels, t_ms, value in batch:
            by_series.setdefault(labels, []).append((t_ms, value))
        return snappy_compress(encode_write_request(list(by_series.items())))

    async def _post(self, body: bytes) -> Optional[bool]:
        """True: sent; False: refused for good (drop it); None: retry later."""
        from sysops_agent.httpclient import HttpError

        try:
            response = await self._client_for().post(
                self.config.url, content=body, headers=self.headers
            )
        except (HttpError, OSError) as e:
            log.warning("remote_write: %s: %s", type(e).__name__, self._redact(str(e)))
            return None
        if 200 <= response.status_code < 300:
            return True
        text = self._redact(response.text[:200])
        if response.status_code == 429 or response.status_code >= 500:
            log.warning("remote_write: HTTP %d, will retry: %s", response.status_code, text)
            return None
        log.error("remote_write: HTTP %d, batch dropped: %s", response.status_code, text)
        return False

    def _redact(self, text: str) -> str:
        for secret in (self.headers.get("Authorization", "").partition(" ")[2],):
            if secret:
                text = text.replace(secret, "***")
        return text

    async def flush(self) -> bool:
        """Send the queue in batches; False when the endpoint failed (what is left stays queued)."""
        backoff = MIN_BACKOFF_SECS
        while self.queue:
            batch = self.batch()
            result = await self._post(self.encode(batch))
            if result is None:
                self.failed_sends += 1
                if backoff > MAX_BACKOFF_SECS:
                    return False  # try again at the next interval
                await self.clock.sleep(backoff)
                backoff *= 2
                continue
            for _ in batch:
                self.queue.popleft()
            if result:
                self.sent += len(batch)
            else:
                self.dropped += len(batch)
            backoff = MIN_BACKOFF_SECS
        return True

    async def run(self) -> None:
        while True:
            await self.clock.sleep(self.config.interval_secs)
            self.collect()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the loop die: the next interval tries again
                log.exception("remote_write: push failed")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
