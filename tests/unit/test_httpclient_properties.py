"""The HTTP client's response parser against h11 (httpx's parser) on the same bytes.

Well-formed answers — any status, reason, header fields and body, framed by
Content-Length, chunked (cut into random chunks, with extensions and
trailers) or the close — must read the same as h11 reads them; any bytes at
all give an answer or an :class:`~sysops_agent.httpclient.HttpError`, never
another exception, and when h11 also accepts them, the same answer.
"""

from __future__ import annotations

import asyncio
from typing import List, Optional, Tuple

import h11
from hypothesis import given
from hypothesis import strategies as st

from sysops_agent import httpclient
from tests.support.properties import PROPERTY

TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: field values: visible ASCII and latin-1 with inner spaces, no edge whitespace
VALUE_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0xFF).filter(lambda c: c != "\x7f")
FRAMING = ("content-length", "transfer-encoding", "content-encoding", "connection")


def h11_read(raw: bytes, method: str = "GET") -> Tuple[h11.Response, bytes]:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    conn.receive_data(b"")
    head: Optional[h11.Response] = None
    body = b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return head, body
        elif event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
            raise h11.RemoteProtocolError("incomplete")


def ours_read(raw: bytes, method: str = "GET") -> httpclient.Response:
    async def read() -> httpclient.Response:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        response, _ = await httpclient.read_response(reader, method, limit=1 << 20)
        return response

    return asyncio.run(read())


@st.composite
def answers(draw: st.DrawFn) -> Tuple[bytes, int, str, List[Tuple[str, str]], bytes]:
    status = draw(st.integers(200, 599).filter(lambda s: s not in (204, 304)))
    reason = draw(st.text(VALUE_CHARS | st.just(" "), max_size=20)).strip()
    names = st.text(st.sampled_from(TOKEN), min_size=1, max_size=12).filter(
        lambda n: n.lower() not in FRAMING
    )
    values = st.text(VALUE_CHARS | st.just(" "), max_size=30).map(str.strip)
    headers = draw(st.lists(st.tuples(names, values), max_size=6))
    body = draw(st.binary(max_size=300))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    head = f"HTTP/1.1 {status} {reason}\r\n" if reason else f"HTTP/1.1 {status} \r\n"
    head += "".join(f"{n}: {v}\r\n" for n, v in headers)
    if framing == "length":
        raw = (head + f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
    elif framing == "close":
        raw = (head + "Connection: close\r\n\r\n").encode("latin-1") + body
    else:
        raw = (head + "Transfer-Encoding: chunked\r\n\r\n").encode("latin-1")
        rest = body
        while rest:
            n = draw(st.integers(1, len(rest)))
            ext = draw(st.sampled_from(["", ";a=b", ";x"]))
            raw += f"{n:x}{ext}\r\n".encode() + rest[:n] + b"\r\n"
            rest = rest[n:]
        raw += b"0\r\n" + draw(st.sampled_from([b"", b"X-T: 1\r\n"])) + b"\r\n"
    return raw, status, reason, headers, body


@PROPERTY
@given(answer=answers())
def test_well_formed_answers_read_as_h11_reads_them(
    answer: Tuple[bytes, int, str, List[Tuple[str, str]], bytes],
) -> None:
    raw, status, reason, headers, body = answer
    theirs, their_body = h11_read(raw)
    ours = ours_read(raw)
    assert ours.status_code == theirs.status_code == status
    assert ours.reason_phrase == reason and reason.encode("latin-1") == theirs.reason
    assert ours.headers.raw[: len(headers)] == headers
    assert ours.content == their_body == body
    ours_headers = [(n.lower().encode(), v.encode("latin-1")) for n, v in ours.headers.raw]
    assert ours_headers == list(theirs.headers)


HTTP_SOUP = st.lists(
    st.sampled_from(
        [
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.0 404 x\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"Content-Length: 3\r\n",
            b"Content-Length: -1\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Content-Encoding: gzip\r\n",
            b"\r\n",
            b"\n",
            b"3\r\nabc\r\n",
            b"0\r\n\r\n",
            b"ffffffffffffffffff\r\n",
            b" folded\r\n",
            b"X: y\r\n",
            b"abc",
            b":",
            b"\x00\xff",
        ]
    ),
    max_size=12,
).map(b"".join)


@PROPERTY
@given(raw=st.one_of(st.binary(max_size=200), HTTP_SOUP))
def test_any_bytes_give_an_answer_or_an_http_error(raw: bytes) -> None:
    try:
        ours: Optional[httpclient.Response] = ours_read(raw)
    except httpclient.HttpError:
        ours = None
    try:
        theirs: Optional[Tuple[h11.Response, bytes]] = h11_read(raw)
    except h11.RemoteProtocolError:
        theirs = None
    if ours is not None and theirs is not None and "content-encoding" not in ours.headers:
        assert (ours.status_code, ours.content) == (theirs[0].status_code, theirs[1])
