"""Fuzz targets: each takes arbitrary bytes and either returns or raises the *documented*
error of the code under test. Anything else (IndexError, RecursionError, KeyError, a hang,
a wrong state) escapes and is a finding.

==================  ============================================  ======================
target              code                                          allowed error
==================  ============================================  ======================
term_decode         erlbridge.term.decode (+ re-encode, decode)   DecodeError
text_parse          erlbridge.term.parse_terms                    TermSyntaxError
handshake           protocol.handshake.Handshake, both roles      HandshakeError
dist_frames         protocol.connection.DistConnection            ProtocolError
==================  ============================================  ======================

Used by ``fuzz/run.py`` (atheris, coverage-guided) and by ``tests/fuzz`` (bounded CI run).
"""

from __future__ import annotations

import contextlib
import json
import math
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from erlbridge.exceptions import (
    DecodeError,
    EncodeError,
    HandshakeError,
    ProtocolError,
    TermSyntaxError,
)
from erlbridge.protocol.connection import DistConnection
from erlbridge.protocol.flags import default_flags
from erlbridge.protocol.handshake import Connected, Handshake, NameReceived, Role, gen_digest
from erlbridge.term import (
    Atom,
    ErlString,
    ImproperList,
    Pid,
    Reference,
    decode,
    encode,
    parse_terms,
)

__all__ = ["SEEDS", "TARGETS"]

_COOKIE = b"fuzzcookie"
_FLAGS = int(default_flags())


def _has_nan(term: Any, depth: int = 0) -> bool:
    if isinstance(term, float):
        return math.isnan(term)
    if depth > 50:
        return False
    if isinstance(term, tuple | list):
        return any(_has_nan(t, depth + 1) for t in term)
    if isinstance(term, dict):
        return any(_has_nan(k, depth + 1) or _has_nan(v, depth + 1) for k, v in term.items())
    return False


def term_decode(data: bytes) -> None:
    try:
        term = decode(data, max_compressed_size=1 << 20)
    except DecodeError:
        return
    # what we decoded must encode, and the encoding must decode to an equal term
    try:
        again = encode(term)
    except EncodeError:
        return  # e.g. a LocalTerm inside a container: documented as whole-term only
    back = decode(again)
    if not _has_nan(term):
        assert back == term, (data, term, back)


def text_parse(data: bytes) -> None:
    try:
        parse_terms(data.decode("utf-8", "replace"))
    except TermSyntaxError:
        return


def _feed(hs: Handshake, data: bytes, cut: int) -> None:
    """Feed ``data`` in pieces of ``cut`` bytes; decide on every NameReceived."""
    for i in range(0, len(data), cut):
        events = hs.receive_data(data[i : i + cut])
        hs.data_to_send()
        while events:
            event = events.pop(0)
            if isinstance(event, NameReceived):
                if len(event.node) % 2:
                    hs.accept("ok")
                    events.extend(hs.receive_data(b""))
                else:
                    hs.reject("nok")
                    return
            else:
                assert isinstance(event, Connected)
                return


def handshake(data: bytes) -> None:
    if not data:
        return
    role = Role.ACCEPTOR if data[0] & 1 else Role.INITIATOR
    packet_bytes = 4 if data[0] & 2 else 2
    cut = 1 + data[0] % 7
    hs = Handshake(
        role,
        this_node="fuzz@127.0.0.1",
        cookie=_COOKIE,
        flags=_FLAGS,
        creation=77,
        challenge=0x1234,
        peer_node="peer@127.0.0.1" if role is Role.INITIATOR else None,
        packet_bytes=packet_bytes,
    )
    try:
        _feed(hs, data[1:], cut)
        hs.connection_lost()
    except HandshakeError:
        return


def dist_frames(data: bytes) -> None:
    if not data:
        return
    cut = 1 + data[0] * 3
    conn = DistConnection(flags=_FLAGS, max_message_size=1 << 16)
    try:
        for i in range(1, len(data), cut):
            conn.receive_data(data[i : i + cut])
            conn.data_to_send()
    except ProtocolError:
        return


TARGETS: dict[str, Callable[[bytes], None]] = {
    "term_decode": term_decode,
    "text_parse": text_parse,
    "handshake": handshake,
    "dist_frames": dist_frames,
}


def _frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def _seeds() -> dict[str, list[bytes]]:
    pid = Pid(Atom("a@h"), 1, 2, 3)
    ref = Reference(Atom("a@h"), 3, (1, 2, 3))
    terms: list[Any] = [
        1, -5, 300, 2**70, 1.5, Atom("ok"), True, b"bin", "text", (1, 2), [1, 2, 3],
        ErlString("abc"), ImproperList((1,), 2), {Atom("k"): [pid, ref]}, (Atom("x"), [])
    ]
    term_seeds = [encode(t) for t in terms] + [encode(list(range(20)), compressed=True)]
    golden = Path(__file__).resolve().parents[1] / "tests" / "term" / "golden"
    for path in sorted(golden.glob("otp*.json"))[:3]:
        try:
            vectors = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        items = vectors if isinstance(vectors, list) else vectors.get("vectors", [])
        for item in items[:200]:
            if isinstance(item, dict) and isinstance(item.get("plain"), str):
                with contextlib.suppress(ValueError):
                    term_seeds.append(bytes.fromhex(item["plain"]))
    text_seeds = [
        b"{ok, [1,2,3], \"str\", <<\"bin\">>, 'quoted atom', #{a => 1}}.",
        b"[{release, {\"demo\", \"1.0\"}, {erts, \"13.1\"}, [{kernel, \"8.5\"}]}].\n% c\n",
        b"{\"2.0.0\", [{\"1.0.0\", [{load_module, m}]}], [{\"1.0.0\", []}]}.",
        b"fun lists:map/2. 16#ff. $a. 1.0e10. <<1:4, 2/utf8>>. [a|b].",
    ]
    name = b"peer@127.0.0.1"
    name_msg = b"N" + struct.pack(">QIH", _FLAGS, 9, len(name)) + name
    reply = b"r" + struct.pack(">I", 5) + gen_digest(0x1234, _COOKIE)
    challenge = b"N" + struct.pack(">QIIH", _FLAGS, 5, 9, len(name)) + name
    ack = b"a" + gen_digest(0x1234, _COOKIE)
    hs_seeds = [
        b"\x01" + b"".join(len(m).to_bytes(2, "big") + m for m in (name_msg, reply)),
        b"\x03" + b"".join(len(m).to_bytes(4, "big") + m for m in (name_msg, reply)),
        b"\x00" + b"".join(len(m).to_bytes(2, "big") + m for m in (b"sok", challenge, ack)),
        b"\x02" + b"".join(len(m).to_bytes(4, "big") + m for m in (b"salive", challenge, ack)),
    ]
    ctl = [(6, pid, Atom(""), Atom("rex")), (22, pid, pid), (1, pid, pid), (19, pid, pid, ref),
           (35, 7, pid, pid), (29, ref, pid, pid, (Atom("m"), Atom("f"), 0), [])]
    frames = b"".join(_frame(b"p" + encode(c) + encode([Atom("msg")])) for c in ctl[:2])
    frames += b"".join(_frame(b"p" + encode(c)) for c in ctl[2:5]) + b"\x00" * 4
    dist_seeds = [b"\x00" + frames, b"\x05" + frames, b"\x00" + _frame(b"p\x83h\x01a\x63")]
    return {"term_decode": term_seeds, "text_parse": text_seeds, "handshake": hs_seeds,
            "dist_frames": dist_seeds}


SEEDS = _seeds()
