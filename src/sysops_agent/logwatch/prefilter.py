"""The log matcher's prefilter: every line that holds an anchor, in one C-speed pass.

Split from :mod:`sysops_agent.logwatch.patterns`, which owns the pattern library
and the :class:`~sysops_agent.logwatch.patterns.Matcher` that uses this.
"""

from __future__ import annotations

import re
from typing import Dict, List, Sequence, Tuple

#: how common each byte is in syslog text (thousands per million lines, measured on
#: bench/logs.py's file and shared/tools/logs/gen_syslog.py's, rounded): the prefilter keys
#: each anchor on a rare byte. Bytes not listed (digits, most punctuation) count as common.
_FREQ_TABLE = (
    "J12 Q43 Z96 X43 V61 K63 G94 Y78 B113 W145 H145 L159 M180 F208 I229 U246 O329 P409 "
    "E391 A395 R447 C560 S561 D592 T677 N1375 "
    "j54 z27 q126 x592 k680 h637 y875 v1652 w1426 b1190 g1397 f1558 p1661 m1687 u1372 "
    "c1667 l1912 d3472 r2948 t3219 n3224 i2627 s4250 a2214 o4940 e7213 "
    "#300 +300 ?300 <300 >300 @300 *300 &300 ,300 (300 )300 _300"
)
BYTE_FREQ: Dict[int, int] = {ord(item[0]): int(item[1:]) for item in _FREQ_TABLE.split()}
#: the frequency assumed for bytes not in the table
COMMON = 5000
#: the byte every chosen key byte becomes in the prefilter's copy of a chunk
SENTINEL = 0x01


def _anchor_tokens(anchor: str) -> List[bytes]:
    """An anchor's characters: one-byte literals and ``[..]`` one-character classes."""
    tokens: List[bytes] = []
    i = 0
    raw = anchor.encode()
    while i < len(raw):
        if raw[i : i + 1] == b"[":
            j = raw.index(b"]", i + 1)
            tokens.append(raw[i : j + 1])
            i = j + 1
        else:
            tokens.append(raw[i : i + 1])
            i += 1
    return tokens


class Prefilter:
    """Finds lines that contain an anchor, in one pass of ``re`` over a translated chunk.

    Python's ``re`` finds a pattern that starts with one literal byte with ``memchr``
    (GB/s), but an alternation of many literals only byte by byte (a few hundred MB/s).
    So each anchor is keyed on a rare byte of its own (:data:`BYTE_FREQ`; a byte another
    anchor already uses costs nothing more); the chunk is translated (one C pass) so
    that every key byte becomes :data:`SENTINEL`, and one regex finds every anchor:
    ``\\x01(?:a(?:rest(?<=whole)|...)|b(?:...))``, grouped by the byte after the key so
    that a sentinel that starts no anchor fails after a byte or two; the part of an
    anchor before its key is checked with a look-behind. Anchors are literal text plus
    ``[..]`` one-character classes, so the prefilter fires only on lines that contain an
    anchor: it is exact.
    """

    def __init__(self, anchors: Sequence[str]) -> None:
        self.anchors = list(anchors)
        token_lists = [_anchor_tokens(a) for a in self.anchors]
        options = [
            [k for k, t in enumerate(tokens) if len(t) == 1 and t[0] != SENTINEL]
            for tokens in token_lists
        ]
        for i, opts in enumerate(options):
            if not opts:
                raise ValueError(f"anchor {self.anchors[i]!r} has no literal byte")
        keys = choose_keys(token_lists, options)
        chosen = {token_lists[i][k][0] for i, k in enumerate(keys)}
        table = bytearray(range(256))
        for b in chosen:
            table[b] = SENTINEL
        self.table = bytes(table)
        self.keys = bytes(sorted(chosen))
        #: anchor index per capturing group (numbered in the order they appear)
        self.rx, self.group_anchor = _compile(token_lists, keys, self.table)


def choose_keys(token_lists: List[List[bytes]], options: List[List[int]]) -> List[int]:
    """The key position of each anchor: rare bytes, shared between anchors where that helps.

    Start from each anchor's rarest byte, then move anchors onto bytes that others
    already use while that lowers the total (a few rounds reach a fixed point).
    """

    def total(keys: List[int]) -> int:
        """Sentinels per million lines for these key positions (+ slow empty rests)."""
        used = {token_lists[i][k][0] for i, k in enumerate(keys)}
        slow = sum(COMMON for i, k in enumerate(keys) if k == len(token_lists[i]) - 1)
        return sum(BYTE_FREQ.get(b, COMMON) for b in used) + slow

    def with_key(keys: List[int], i: int, k: int) -> List[int]:
        return [*keys[:i], k, *keys[i + 1 :]]

    keys = [
        min(opts, key=lambda k: BYTE_FREQ.get(tokens[k][0], COMMON))
        for opts, tokens in zip(options, token_lists)
    ]
    for _ in range(8):
        changed = False
        # drop a key byte when every anchor keyed on it can move to another used byte
        for b in sorted({token_lists[i][k][0] for i, k in enumerate(keys)}):
            trial = list(keys)
            used = {token_lists[i][k][0] for i, k in enumerate(keys)} - {b}
            for i, k in enumerate(keys):
                if token_lists[i][k][0] != b:
                    continue
                moves = [m for m in options[i] if token_lists[i][m][0] in used]
                if not moves:
                    break
                trial[i] = min(moves, key=lambda m: total(with_key(trial, i, m)))
            else:
                if total(trial) < total(keys):
                    keys, changed = trial, True
        for i, opts in enumerate(options):
            cost = {k: total(with_key(keys, i, k)) for k in opts}
            best = min(opts, key=lambda k: (cost[k], k))
            if cost[best] < cost[keys[i]]:
                keys[i] = best
                changed = True
        if not changed:
            break
    return keys


def _compile(
    token_lists: List[List[bytes]], keys: List[int], table: bytes
) -> Tuple[re.Pattern[bytes], List[int]]:
    """The one regex over the translated chunk, and the anchor of each capturing group."""
    key_at = dict(enumerate(keys))

    def members(token: bytes) -> List[int]:
        """The bytes a token matches in the translated chunk."""
        raw = token if len(token) == 1 else token[1:-1]
        return sorted({table[c] for c in raw})

    def tr(token: bytes) -> bytes:
        ms = members(token)
        if len(ms) == 1:
            return re.escape(bytes(ms))
        return b"[" + b"".join(re.escape(bytes([c])) for c in ms) + b"]"

    # grouped by the token after the key byte; the empty group at the end of each
    # branch tells which anchor matched (entered only on a match: costs nothing)
    groups: Dict[bytes, List[Tuple[int, bytes]]] = {}
    for i, tokens in enumerate(token_lists):
        k = key_at[i]
        rest = [tr(t) for t in tokens[k + 1 :]]
        behind = b"(?<=" + b"".join(tr(t) for t in tokens) + b")" if k else b""
        head = rest[0] if rest else b""
        groups.setdefault(head, []).append((i, b"".join(rest[1:]) + behind + b"()"))
    group_anchor = [i for branches in groups.values() for i, _ in branches]
    after: List[int] = []
    for i, tokens in enumerate(token_lists):
        k = key_at[i]
        after.extend(members(tokens[k + 1]) if k + 1 < len(tokens) else range(256))
    # a sentinel not followed by any head byte is rejected by one class test
    look = b""
    if len(set(after)) < 256:
        look = b"(?=[" + b"".join(re.escape(bytes([c])) for c in sorted(set(after))) + b"])"
    rx = re.compile(
        re.escape(bytes([SENTINEL]))
        + look
        + b"(?:"
        + b"|".join(
            head + b"(?:" + b"|".join(branch for _, branch in branches) + b")"
            for head, branches in groups.items()
        )
        + b")"
    )
    return rx, group_anchor
