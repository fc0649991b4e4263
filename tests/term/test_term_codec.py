"""Unit tests of the External Term Format codec (hand-written byte vectors)."""

from __future__ import annotations

import enum
import struct
import sys
import zlib

import pytest

from erlbridge.exceptions import DecodeError, EncodeError
from erlbridge.term import (
    ACCELERATED,
    Atom,
    BitString,
    ErlString,
    ExportFun,
    FrozenList,
    FrozenMap,
    Fun,
    ImproperList,
    LocalTerm,
    MapPairs,
    NativeRecord,
    Pid,
    Port,
    Reference,
    decode,
    decode_prefix,
    decoder,
    encode,
    encoder,
    format_term,
)

NODE = Atom("a@b")
NODE_BYTES = b"w\x03a@b"


def _atom(name: str) -> bytes:
    raw = name.encode()
    return bytes((119, len(raw))) + raw


@pytest.mark.parametrize(
    ("term", "wire"),
    [
        (0, b"a\x00"),
        (255, b"a\xff"),
        (256, b"b\x00\x00\x01\x00"),
        (-1, b"b\xff\xff\xff\xff"),
        (2**31 - 1, b"b\x7f\xff\xff\xff"),
        (-(2**31), b"b\x80\x00\x00\x00"),
        (2**31, b"n\x04\x00\x00\x00\x00\x80"),
        (-(2**31) - 1, b"n\x04\x01\x01\x00\x00\x80"),
        (2**2040 - 1, b"n\xff\x00" + b"\xff" * 255),
        (2**2040, b"o\x00\x00\x01\x00\x00" + b"\x00" * 255 + b"\x01"),
        (-(2**2040), b"o\x00\x00\x01\x00\x01" + b"\x00" * 255 + b"\x01"),
        (1.5, b"F" + struct.pack(">d", 1.5)),
        (-0.0, b"F" + struct.pack(">d", -0.0)),
        (Atom("ok"), b"w\x02ok"),
        (Atom("é" * 200), b"v\x01\x90" + "é".encode() * 200),
        (True, b"w\x04true"),
        (False, b"w\x05false"),
        ((), b"h\x00"),
        ((1, 2), b"h\x02a\x01a\x02"),
        (tuple(range(256)), b"i\x00\x00\x01\x00" + b"".join(bytes((97, i)) for i in range(256))),
        ([], b"j"),
        ([1, 2, 3], b"k\x00\x03\x01\x02\x03"),
        ([1, 256], b"l\x00\x00\x00\x02a\x01b\x00\x00\x01\x00j"),
        ([Atom("a"), [1000]], b"l\x00\x00\x00\x02w\x01al\x00\x00\x00\x01b\x00\x00\x03\xe8jj"),
        (ErlString("abc"), b"k\x00\x03abc"),
        (ErlString(""), b"j"),
        (ErlString("λ"), b"l\x00\x00\x00\x01b\x00\x00\x03\xbbj"),
        (b"", b"m\x00\x00\x00\x00"),
        (b"\x00\xff", b"m\x00\x00\x00\x02\x00\xff"),
        ({}, b"t\x00\x00\x00\x00"),
        ({Atom("k"): 1}, b"t\x00\x00\x00\x01w\x01ka\x01"),
        (ImproperList((1, 2), Atom("t")), b"l\x00\x00\x00\x02a\x01a\x02w\x01t"),
        (BitString(b"\x20", 3), b"M\x00\x00\x00\x01\x03\x20"),
        (Pid(NODE, 1, 2, 3), b"X" + NODE_BYTES + struct.pack(">III", 1, 2, 3)),
        (Port(NODE, 7, 3), b"Y" + NODE_BYTES + struct.pack(">II", 7, 3)),
        (Port(NODE, 2**40, 3), b"x" + NODE_BYTES + struct.pack(">QI", 2**40, 3)),
        (
            Reference(NODE, 3, (1, 2, 3)),
            b"Z\x00\x03" + NODE_BYTES + struct.pack(">IIII", 3, 1, 2, 3),
        ),
        (ExportFun(Atom("m"), Atom("f"), 2), b"qw\x01mw\x01fa\x02"),
        (
            NativeRecord(Atom("m"), Atom("r"), ((Atom("x"), 10), (Atom("y"), b"b")), False),
            b"C\x00\x00\x00\x02\x00w\x01mw\x01rw\x01xw\x01ya\x0am\x00\x00\x00\x01b",
        ),
        (
            NativeRecord(Atom("m"), Atom("r"), (), True),
            b"C\x00\x00\x00\x00\x01w\x01mw\x01r",
        ),
    ],
)
def test_encode_and_decode_known_bytes(term: object, wire: bytes) -> None:
    assert encode(term) == b"\x83" + wire
    decoded = decode(b"\x83" + wire)
    assert decoded == term
    assert encode(decoded) == b"\x83" + wire


@pytest.mark.parametrize(
    ("term", "wire", "decoded"),
    [
        (None, b"w\tundefined", Atom("undefined")),
        ("héllo", b"m\x00\x00\x00\x06h\xc3\xa9llo", "héllo".encode()),
        (bytearray(b"ab"), b"m\x00\x00\x00\x02ab", b"ab"),
        (memoryview(b"ab"), b"m\x00\x00\x00\x02ab", b"ab"),
        (FrozenList([1, 2]), b"k\x00\x02\x01\x02", [1, 2]),
        (FrozenMap({1: 2}), b"t\x00\x00\x00\x01a\x01a\x02", {1: 2}),
        ([True, 1], b"l\x00\x00\x00\x02w\x04truea\x01j", [True, 1]),
    ],
)
def test_encode_one_way(term: object, wire: bytes, decoded: object) -> None:
    assert encode(term) == b"\x83" + wire
    assert decode(b"\x83" + wire) == decoded


def test_subclasses_encode_like_their_base() -> None:
    class Color(enum.IntEnum):
        RED = 300

    class MyStr(str):
        pass

    class MyTuple(tuple):  # type: ignore[type-arg]
        pass

    class MyDict(dict):  # type: ignore[type-arg]
        pass

    class MyList(list):  # type: ignore[type-arg]
        pass

    class MyBytes(bytes):
        pass

    class MyFloat(float):
        pass

    class MyAtom(Atom):
        pass

    assert encode(Color.RED) == encode(300)
    assert encode(MyStr("x")) == encode("x")
    assert encode(MyTuple((1,))) == encode((1,))
    assert encode(MyDict({1: 2})) == encode({1: 2})
    assert encode(MyList([1])) == encode([1])
    assert encode(MyBytes(b"x")) == encode(b"x")
    assert encode(MyFloat(2.0)) == encode(2.0)
    assert encode(MyAtom("a")) == encode(Atom("a"))
    assert encode([Color.RED]) == encode([300])


@pytest.mark.parametrize(
    "bad",
    [
        {1, 2},
        object(),
        float("nan"),
        float("inf"),
        Atom("a" * 256),
        "\ud800",
        Atom("\ud800"),
        Reference(NODE, 1, ()),
        Reference(NODE, 1, (1,) * 6),
        Pid(NODE, -1, 0, 0),
        Pid(NODE, 2**32, 0, 0),
        ExportFun(Atom("m"), Atom("f"), 256),
        [LocalTerm(b"x")],
    ],
)
def test_encode_rejects(bad: object) -> None:
    with pytest.raises(EncodeError):
        encode(bad)


def test_encode_rejects_cycles_and_depth() -> None:
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with pytest.raises(EncodeError):
        encode(cyclic)


def test_compressed_round_trip_and_only_when_smaller() -> None:
    term = [Atom("abc")] * 100
    plain = encode(term)
    packed = encode(term, compressed=True)
    assert packed[:2] == b"\x83P"
    assert struct.unpack(">I", packed[2:6])[0] == len(plain) - 1
    assert zlib.decompress(packed[6:]) == plain[1:]
    assert decode(packed) == term
    assert encode(term, compressed=9) != plain
    assert encode(1, compressed=True) == encode(1)
    with pytest.raises(ValueError):
        encode(1, compressed=10)


def test_decode_old_forms() -> None:
    assert decode(b"\x83d\x00\x02ok") == Atom("ok")
    assert decode(b"\x83s\x02ok") == Atom("ok")
    assert decode(b"\x83s\x04true") is True
    assert decode(b"\x83d\x00\x05false") is False
    assert decode(b"\x83s\x01\xe9") == Atom("é")
    old_float = b"\x83c" + b"1.50000000000000000000e+00".ljust(31, b"\x00")
    assert decode(old_float) == 1.5
    assert decode(b"\x83gs\x03a@b" + struct.pack(">IIB", 1, 2, 3)) == Pid(NODE, 1, 2, 3)
    assert decode(b"\x83fs\x03a@b" + struct.pack(">IB", 7, 2)) == Port(NODE, 7, 2)
    assert decode(b"\x83es\x03a@b" + struct.pack(">IB", 9, 2)) == Reference(NODE, 2, (9,))
    new_ref = b"\x83r\x00\x02s\x03a@b\x02" + struct.pack(">II", 1, 2)
    assert decode(new_ref) == Reference(NODE, 2, (1, 2))


def test_decode_v4_port_echoes_exactly() -> None:
    wire = b"\x83x" + NODE_BYTES + struct.pack(">QI", 5, 3)
    port = decode(wire)
    assert port == Port(NODE, 5, 3)
    assert port.v4
    assert encode(port) == wire


def test_decode_node_atom_true_stays_atom() -> None:
    pid = decode(b"\x83Xw\x04true" + struct.pack(">III", 1, 2, 3))
    assert type(pid.node) is Atom
    assert pid.node == "true"
    pid = decode(b"\x83Xw\x05false" + struct.pack(">III", 1, 2, 3))
    assert pid.node == "false"


def _fun_bytes(free: bytes = b"", num_free: int = 0) -> bytes:
    body = (
        bytes([1])
        + bytes(range(16))
        + struct.pack(">II", 0, num_free)
        + _atom("mod")
        + b"a\x00"
        + b"b\x01\x02\x03\x04"
        + b"X"
        + NODE_BYTES
        + struct.pack(">III", 1, 0, 3)
        + free
    )
    return b"p" + struct.pack(">I", len(body) + 4) + body


def test_fun_is_opaque_and_echoed() -> None:
    wire = b"\x83" + _fun_bytes(b"a\x05w\x01x", 2)
    fun = decode(wire)
    assert isinstance(fun, Fun)
    assert fun.module == "mod"
    assert fun.arity == 1
    assert fun.free_vars == (5, Atom("x"))
    assert fun.pid == Pid(NODE, 1, 0, 3)
    assert encode(fun) == wire
    assert encode((fun, fun)) == b"\x83h\x02" + wire[1:] * 2
    assert str(fun).startswith("#Fun<mod.0.")
    assert hash(fun) == hash(decode(wire))


def test_local_ext_kept_raw() -> None:
    wire = b"\x83y\x01\x02\x03"
    term = decode(wire)
    assert term == LocalTerm(b"\x01\x02\x03")
    assert encode(term) == wire
    assert decode_prefix(wire + b"\x00", 0) == (LocalTerm(b"\x01\x02\x03\x00"), 6)


def test_unhashable_map_keys_get_frozen_forms() -> None:
    wire = encode({(1, FrozenList([2])): FrozenMap({FrozenList([3]): 4})})
    inner = b"t\x00\x00\x00\x01l\x00\x00\x00\x01b\x00\x00\x03\xe8ja\x01"
    key_map = b"\x83t\x00\x00\x00\x01" + inner + b"a\x02"
    decoded = decode(key_map)
    (key,) = decoded
    assert isinstance(key, FrozenMap)
    assert key == {FrozenList([1000]): 1}
    assert encode(decoded) == key_map
    assert decode(wire) == {(1, FrozenList([2])): {FrozenList([3]): 4}}
    improper_key = b"\x83t\x00\x00\x00\x01l\x00\x00\x00\x01jw\x01xa\x01"
    decoded = decode(improper_key)
    assert decoded == {ImproperList((FrozenList([]),), Atom("x")): 1}
    assert encode(decoded) == improper_key
    record_key = b"\x83t\x00\x00\x00\x01C\x00\x00\x00\x01\x00w\x01mw\x01rw\x01fja\x01"
    decoded = decode(record_key)
    assert encode(decoded) == record_key


def test_map_keys_that_are_maps_with_colliding_keys() -> None:
    # #{#{1 => a, 1.0 => b} => x}: the inner map is MapPairs, frozen as a key
    inner = b"t\x00\x00\x00\x02a\x01w\x01aF" + struct.pack(">d", 1.0) + b"w\x01b"
    wire = b"\x83t\x00\x00\x00\x01" + inner + b"w\x01x"
    term = decode(wire)
    ((key, value),) = term.items()
    assert key == MapPairs(((1, Atom("a")), (1.0, Atom("b"))))
    assert value == Atom("x")
    assert encode(term) == wire
    # list keys inside: [1] and [1.0] differ in Python too, so a plain frozen map
    inner = b"t\x00\x00\x00\x02k\x00\x01\x01a\x01l\x00\x00\x00\x01F" + struct.pack(">d", 1.0)
    wire = b"\x83t\x00\x00\x00\x01" + inner + b"ja\x02a\x03"
    term = decode(wire)
    assert encode(term) == wire
    ((key, _),) = term.items()
    assert key == FrozenMap({ErlString("\x01"): 1, FrozenList([1.0]): 2})
    # a list key next to a colliding one: frozen inside the MapPairs, so it hashes
    inner = b"t\x00\x00\x00\x03a\x01a\x01F" + struct.pack(">d", 1.0) + b"a\x02l\x00\x00\x00\x01F"
    inner += struct.pack(">d", 1.0) + b"ja\x03"
    wire = b"\x83t\x00\x00\x00\x01" + inner + b"a\x04"
    term = decode(wire)
    ((key, _),) = term.items()
    assert key == MapPairs(((1, 1), (1.0, 2), (FrozenList([1.0]), 3)))
    assert hash(key) == hash(MapPairs(((1, 1), (1.0, 2), (FrozenList([1.0]), 3))))
    assert encode(term) == wire


def test_colliding_map_with_unhashable_values_as_a_key() -> None:
    # #{#{1 => [x], 1.0 => b} => y}: the MapPairs holds a list value, frozen as a key
    inner = b"t\x00\x00\x00\x02a\x01l\x00\x00\x00\x01w\x01xjF" + struct.pack(">d", 1.0)
    wire = b"\x83t\x00\x00\x00\x01" + inner + b"w\x01bw\x01y"
    term = decode(wire)
    ((key, _),) = term.items()
    assert key == MapPairs(((1, FrozenList([Atom("x")])), (1.0, Atom("b"))))
    assert encode(term) == wire


def test_map_with_a_repeated_key_is_refused() -> None:
    # found by the fuzzers: #{[] => 1, [] => 2} as the key of another map
    with pytest.raises(DecodeError, match="repeated key"):
        decode(bytes.fromhex("83740000000174000000026a61016a61026101"))
    with pytest.raises(DecodeError, match="repeated key") as info:
        decode(b"\x83t\x00\x00\x00\x02a\x01a\x02a\x01a\x03")
    assert info.value.offset == 2


def test_map_keys_colliding_in_python_keep_their_pairs() -> None:
    wire = b"\x83t\x00\x00\x00\x03a\x01a\x02w\x04truea\x03F" + struct.pack(">d", 1.0) + b"a\x04"
    term = decode(wire)
    assert isinstance(term, MapPairs)
    assert term == MapPairs(((1, 2), (True, 3), (1.0, 4)))
    assert encode(term) == wire
    assert repr(term) == "MapPairs(((1, 2), (True, 3), (1.0, 4)))"
    assert format_term(term) == "#{1 => 2,true => 3,1.0 => 4}"
    assert "\n" in format_term(term, width=5)
    assert encode(MapPairs(())) == encode({})


def test_decode_accepts_buffers() -> None:
    wire = encode([b"xyz", Atom("abc"), (1, "s")])
    expected = decode(wire)
    assert decode(bytearray(wire)) == expected
    assert decode(memoryview(wire)) == expected
    assert decode(memoryview(bytearray(wire))) == expected
    assert decode(memoryview(wire).cast("c")) == expected

    class MyBytes(bytes):
        pass

    assert decode(MyBytes(wire)) == expected
    with pytest.raises(TypeError):
        decode("text")  # type: ignore[arg-type]


def test_decode_prefix_walks_a_buffer() -> None:
    one, two = encode((1, Atom("a"))), encode([b"x"] * 3, compressed=True)
    buf = b"junk" + one + two + b"rest"
    term, end = decode_prefix(buf, 4)
    assert term == (1, Atom("a"))
    assert end == 4 + len(one)
    term, end = decode_prefix(buf, end)
    assert term == [b"x"] * 3
    assert buf[end:] == b"rest"
    with pytest.raises(DecodeError):
        decode_prefix(buf, len(buf) + 1)
    with pytest.raises(DecodeError) as info:
        decode_prefix(buf, len(buf))
    assert info.value.offset == len(buf)


@pytest.mark.parametrize(
    ("wire", "offset"),
    [
        (b"", 0),
        (b"\x82a\x01", 0),
        (b"\x83", 1),
        (b"\x83a", 2),
        (b"\x83a\x01\x00", 3),
        (b"\x83\x00", 1),
        (b"\x83R\x00", 1),  # atom cache refs only exist in dist headers
        (b"\x83u\x00\x00\x00\x00", 1),  # FUN_EXT, removed
        (b"\x83m\x00\x00\x00\x05ab", 2),
        (b"\x83m\xff\xff\xff\xff", 2),
        (b"\x83k\x00\x05ab", 2),
        (b"\x83w\x05ab", 3),
        (b"\x83v\x00\x05ab", 4),
        (b"\x83s\x05ab", 3),
        (b"\x83d\x00\x05ab", 4),
        (b"\x83w\x02\xff\xfe", 3),
        (b"\x83n\x02\x00\x01", 3),
        (b"\x83o\x00\x00\x00\x09\x00", 6),
        (b"\x83l\x00\x00\x00\x05a\x01", 6),
        (b"\x83h\x02a\x01", 5),
        (b"\x83h\x05a\x01", 3),
        (b"\x83i\xff\xff\xff\xff", 6),
        (b"\x83t\xff\xff\xff\xff", 6),
        (b"\x83l\x00\x00\x00\x01a\x01\x00", 8),
        (b"\x83M\x00\x00\x00\x01\x00\x00", 6),
        (b"\x83M\x00\x00\x00\x01\x09\x00", 6),
        (b"\x83M\x00\x00\x00\x00\x01", 6),
        (b"\x83M\x00\x00\x00\x05\x01\x00", 2),
        (b"\x83Xa\x01", 2),
        (b"\x83X" + NODE_BYTES + b"\x00", 8),
        (b"\x83Z\x00\x00" + NODE_BYTES, 2),
        (b"\x83Z\x00\x06" + NODE_BYTES, 2),
        (b"\x83r\x00\x00" + NODE_BYTES, 2),
        (b"\x83qw\x01ma\x01a\x01", 5),
        (b"\x83qw\x01mw\x01fw\x01x", 8),  # arity: not an integer
        (b"\x83qw\x01mw\x01fb\x00\x00\x01\x00", 8),  # arity 256: OTP 27 crashes on it
        (b"\x83qw\x01mw\x01fb\xff\xff\xff\xff", 8),
        (b"\x83p\x00\x00\x00\x05", 2),
        (b"\x83p\x00\x00\x01\x00" + b"\x00" * 30, 2),
        (b"\x83C\x00\x00\x00\x00\x02w\x01mw\x01r", 6),
        (b"\x83C\xff\xff\xff\xff\x00w\x01mw\x01r", 2),
        (b"\x83c1.5", 2),
        (b"\x83F\x7f\xf8\x00\x00\x00\x00\x00\x00", 2),  # NaN
        (b"\x83F\xff\xf0\x00\x00\x00\x00\x00\x00", 2),  # -infinity
        (b"\x83c" + b"abc".ljust(31, b"\x00"), 2),
        (b"\x83c" + b"nan".ljust(31, b"\x00"), 2),
        (b"\x83c" + b"inf".ljust(31, b"\x00"), 2),
        (b"\x83v\x01\x00" + b"a" * 256, 4),
        # Latin-1 atoms: one byte per character, 255 at most (binary_to_term's limit).
        (b"\x83d\x01\x00" + b"a" * 256, 4),
        (b"\x83d\xff\xff" + b"\xe9" * 65535, 4),
        (b"\x83d\xff\xff", 4),  # too long is reported before too short
        (b"\x83Xd\x01\x00" + b"a" * 256 + bytes(12), 5),
        (b"\x83qw\x01md\x01\x00" + b"f" * 256 + b"a\x00", 8),
        (b"\x83c" + b"1." + b"0" * 29, 2),  # FLOAT_EXT without a NUL
        (b"\x83c" + b"1".ljust(31, b"\x00"), 2),  # not Erlang float syntax
        (b"\x83g" + NODE_BYTES + struct.pack(">IIB", 1, 2, 4), 15),  # 2-bit creation
        (b"\x83e" + NODE_BYTES + struct.pack(">IB", 0x40000, 1), 7),  # 18-bit word
    ],
)
def test_malformed_input_is_a_decode_error_with_offset(wire: bytes, offset: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode(wire)
    assert info.value.offset == offset


def _fun_wire(module: bytes, old_index: bytes, old_uniq: bytes, pid: bytes, n_free: int) -> bytes:
    body = bytes(17) + struct.pack(">II", 0, n_free) + module + old_index + old_uniq + pid
    body += b"a\x01" * n_free
    return b"\x83p" + struct.pack(">I", len(body) + 4) + body


def test_fun_fields_are_type_checked_like_binary_to_term() -> None:
    pid = b"X" + NODE_BYTES + bytes(12)
    good = _fun_wire(b"w\x01m", b"a\x00", b"b" + bytes(4), pid, 255)
    assert len(decode(good).free_vars) == 255
    assert encode(decode(good)) == good
    cases = {
        # An atom as the creator: OTP 25.2 decodes it, then crashes re-encoding it.
        "fun creator must be a pid": _fun_wire(b"w\x01m", b"a\x00", b"b" + bytes(4), b"w\x01x", 0),
        "old index": _fun_wire(b"w\x01m", b"w\x01x", b"b" + bytes(4), pid, 0),
        "old uniq": _fun_wire(b"w\x01m", b"a\x00", b"w\x01x", pid, 0),
        "256 free variables": _fun_wire(b"w\x01m", b"a\x00", b"b" + bytes(4), pid, 256),
    }
    for message, wire in cases.items():
        with pytest.raises(DecodeError, match=message):
            decode(wire)


def test_integer_size_limit_of_binary_to_term() -> None:
    """OTP 25 takes LARGE_BIG_EXT up to (2**19 - 1) * 8 bytes (found by bisection
    against binary_to_term; OTP 26+ stop at 65535 * 8), whatever the value."""
    limit = (2**19 - 1) * 8
    top = b"\x83o" + struct.pack(">IB", limit, 0) + bytes(limit - 1) + b"\x01"
    assert decode(top) == 1 << (8 * (limit - 1))
    over = b"\x83o" + struct.pack(">IB", limit + 1, 0) + b"\x01" + bytes(limit)
    with pytest.raises(DecodeError, match="more than binary_to_term takes") as info:
        decode(over)
    assert info.value.offset == 2
    # The encoder draws the line at the same place.
    assert encode(-(1 << (8 * (limit - 1)))) == top[:6] + b"\x01" + top[7:]
    with pytest.raises(EncodeError, match="more than binary_to_term takes"):
        encode(1 << (8 * limit))


def test_fun_size_must_match_contents() -> None:
    wire = bytearray(b"\x83" + _fun_bytes(b"a\x05", 1) + b"a\x01")
    wire[2:6] = struct.pack(">I", struct.unpack(">I", wire[2:6])[0] + 2)
    with pytest.raises(DecodeError, match="size does not match"):
        decode(bytes(wire))


def test_bitstrings_are_normalised() -> None:
    assert decode(b"\x83M\x00\x00\x00\x01\x08\xab") == b"\xab"
    assert encode(BitString(b"\xab", 8)) == b"\x83M\x00\x00\x00\x01\x08\xab"
    assert decode(b"\x83M\x00\x00\x00\x01\x03\xff") == BitString(b"\xe0", 3)
    assert BitString(b"\xff", 3).data == b"\xe0"


def test_record_flags_must_be_known() -> None:
    with pytest.raises(DecodeError, match="flags"):
        decode(b"\x83C\x00\x00\x00\x00\x02w\x01mw\x01r")


def test_truncated_atom_that_matches_a_cached_atom() -> None:
    decode(encode(Atom("ab")))  # cache 'ab'
    with pytest.raises(DecodeError):
        decode(b"\x83h\x01w\x03ab")
    with pytest.raises(DecodeError):
        decode_prefix(b"\x83h\x01w\x03ab")


def test_nested_non_canonical_list_tail_is_normalised() -> None:
    wire = b"\x83l\x00\x00\x00\x01a\x01l\x00\x00\x00\x01a\x02j"
    assert decode(wire) == [1, 2]
    assert decode(b"\x83l\x00\x00\x00\x01a\x01k\x00\x01\x02") == [1, 2]


def test_depth_limit() -> None:
    deep = b"\x83" + b"h\x01" * 1000 + b"j"
    with pytest.raises(DecodeError, match="max_depth"):
        decode(deep)
    assert decode(b"\x83" + b"h\x01" * 50 + b"j", max_depth=60) is not None
    deep_list = b"\x83" + b"l\x00\x00\x00\x01" * 500 + b"j" * 501
    with pytest.raises(DecodeError, match="max_depth"):
        decode(deep_list)
    with pytest.raises(DecodeError, match="max_depth"):
        decode(b"\x83" + b"h\x01" * 10 + b"j", max_depth=5)


def test_deep_fun_nesting_is_bounded() -> None:
    wire = b"a\x00"
    for _ in range(600):
        body = bytes([0]) + bytes(16) + struct.pack(">II", 0, 0) + _atom("m") + wire
        body += b"a\x00X" + NODE_BYTES + struct.pack(">III", 1, 0, 3)
        wire = b"p" + struct.pack(">I", len(body) + 4) + body
    with pytest.raises(DecodeError, match="max_depth"):
        decode(b"\x83" + wire)


@pytest.mark.skipif(
    ACCELERATED and sys.version_info >= (3, 12),
    reason="from 3.12 the compiled decoder's recursion does not count against Python's",
)
def test_recursion_error_near_the_limit_becomes_decode_error() -> None:
    limit = sys.getrecursionlimit()
    depth = 0

    def nest() -> None:
        nonlocal depth
        depth += 1
        if depth < limit - 60:
            nest()
            return
        with pytest.raises(DecodeError, match="Python stack"):
            decode(b"\x83" + b"h\x01" * 200 + b"j", max_depth=10_000)

    nest()


def test_compressed_limits() -> None:
    packed = encode([b"x" * 100] * 10, compressed=True)
    with pytest.raises(DecodeError, match="max_compressed_size"):
        decode(packed, max_compressed_size=100)
    broken = packed[:6] + b"garbage" + packed[13:]
    with pytest.raises(DecodeError, match="zlib"):
        decode(broken)
    short = packed[:2] + struct.pack(">I", 5000) + packed[6:]
    with pytest.raises(DecodeError, match="declared size"):
        decode(short)
    inner = zlib.compress(b"a\x01a\x02")
    with pytest.raises(DecodeError, match="trailing"):
        decode(b"\x83P\x00\x00\x00\x04" + inner)
    bad_inner = zlib.compress(b"\x00\x01")
    with pytest.raises(DecodeError, match="in compressed term"):
        decode(b"\x83P\x00\x00\x00\x02" + bad_inner)
    with pytest.raises(DecodeError, match="trailing"):
        decode(packed + b"\x00")


def test_model_equality_and_display() -> None:
    s = ErlString("1.0.0")
    assert s == ErlString("1.0.0")
    assert s == "1.0.0"
    assert s == [ord(c) for c in "1.0.0"]
    assert s != [ord(c) for c in "1.0.1"]
    assert s != [ord(c) for c in "1.0.0."]
    assert s != [True] * 5
    assert s != 5
    assert hash(s) == hash("1.0.0")
    assert list(s) == [49, 46, 48, 46, 48]
    assert len(s) == 5
    assert s[0] == 49
    assert s[1:3] == ErlString(".0")
    assert str(s) == '"1.0.0"'
    assert repr(s) == "ErlString('1.0.0')"
    assert ErlString([104, 105]) == "hi"
    assert s.text == "1.0.0"
    with pytest.raises(ValueError):
        ErlString([-1])
    with pytest.raises(AttributeError):
        s.foo = 1
    a = Atom("ok")
    assert repr(a) == "Atom('ok')"
    assert str(a) == "ok"
    assert str(Atom("EXIT")) == "'EXIT'"
    assert a.name == "ok"
    assert a == "ok"
    assert str(Pid(NODE, 1, 2, 3)) == "<a@b.1.2>"
    assert str(Reference(NODE, 3, (1, 2))) == "#Ref<a@b.2.1>"
    assert str(Port(NODE, 4, 3)) == "#Port<a@b.4>"
    assert str(ImproperList([1], Atom("x"))) == "[1|x]"  # type: ignore[arg-type]
    assert str(BitString(bytearray(b"\xff\x80"), 1)) == "<<255,1:1>>"  # type: ignore[arg-type]
    assert str(ExportFun(Atom("m"), Atom("f"), 1)) == "fun m:f/1"
    rec = NativeRecord(Atom("m"), Atom("r"), ((Atom("x"), 1),))
    assert str(rec) == "#m:r{x = 1}"
    assert rec["x"] == 1
    with pytest.raises(KeyError):
        rec["y"]
    assert str(LocalTerm(b"abc")) == "#LocalTerm<3 bytes>"
    with pytest.raises(ValueError):
        ImproperList((), 1)
    with pytest.raises(ValueError):
        ImproperList((1,), [2])
    with pytest.raises(ValueError):
        BitString(b"", 1)
    with pytest.raises(ValueError):
        BitString(b"\x00", 0)
    assert FrozenList([1]) == [1]
    assert FrozenList([1]) == FrozenList([1])
    assert FrozenList([1]) != (1,)
    assert FrozenList([104]) == ErlString("h")
    assert repr(FrozenList([1])) == "FrozenList([1])"
    assert hash(FrozenList([1])) != hash((1,))
    m = FrozenMap({1: 2})
    assert m == {1: 2}
    assert m == FrozenMap({1: 2})
    assert m != [(1, 2)]
    assert hash(m) == hash(FrozenMap([(1, 2)]))
    assert hash(m) == hash(m)
    assert m[1] == 2
    assert list(m) == [1]
    assert len(m) == 1
    assert repr(m) == "FrozenMap({1: 2})"


def test_caches_stop_growing_at_their_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoder, "_ATOM_CACHE_MAX", 0)
    monkeypatch.setattr(encoder, "_ATOM_BYTES_MAX", 0)
    assert decode(b"\x83w\x0bnot_cached1") == Atom("not_cached1")
    assert "not_cached1" not in {bytes(k).decode() for k in decoder._ATOM_CACHE}
    assert encode(Atom("not_cached2")) == b"\x83w\x0bnot_cached2"
    assert "not_cached2" not in encoder._ATOM_BYTES


def test_node_atoms_in_every_atom_encoding() -> None:
    ids = struct.pack(">III", 1, 2, 3)
    expected = Pid(NODE, 1, 2, 3)
    assert decode(b"\x83Xv\x00\x03a@b" + ids) == expected
    assert decode(b"\x83Xs\x03a@b" + ids) == expected
    assert decode(b"\x83Xd\x00\x03a@b" + ids) == expected


def test_integer_runs_in_lists() -> None:
    values = [1, 2, 3, 1000, 1001, 1002, -5, 7, 2**40, 8, 9] * 30
    wire = encode(values)
    assert wire[1] == 108
    for buf in (wire, bytearray(wire), memoryview(wire)):
        assert decode(buf) == values
    assert encode(decode(wire)) == wire
    assert decode(encode(list(range(256, 5000)))) == list(range(256, 5000))
    # a run of INTEGER_EXT whose last element is cut short
    with pytest.raises(DecodeError):
        decode(b"\x83l\x00\x00\x00\x03b\x00\x00\x00\x01b\x00\x00\x00\x02b\x00")
    with pytest.raises(DecodeError):
        decode(b"\x83l\x00\x00\x00\x03a\x01a\x02a")


def test_big_binaries_are_joined_once() -> None:
    big = bytes(range(256)) * 300
    term = (big, [memoryview(big), bytearray(b"x")], 1)
    wire = encode(term)
    assert decode(wire) == (big, [big, b"x"], 1)
    assert wire == b"\x83h\x03" + encode(big)[1:] + (
        b"l\x00\x00\x00\x02" + encode(big)[1:] + b"m\x00\x00\x00\x01xj" + b"a\x01"
    )
    assert decode(encode(term, compressed=True)) == decode(wire)


def test_long_and_wide_strings() -> None:
    long = ErlString("a" * 70000)
    wire = encode(long)
    assert wire[1] == 108
    assert decode(wire) == long
    assert decode(encode([1000, 2**40, -(2**40)])) == [1000, 2**40, -(2**40)]


def test_map_key_subclasses() -> None:
    class MyStr(str):
        pass

    assert encode({MyStr("k"): MyStr("v")}) == encode({"k": "v"})
