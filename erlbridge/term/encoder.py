"""External Term Format encoder (``term_to_binary``), in the forms OTP 25+ emits.

Dispatch is on the exact Python type (one dict lookup), with an ``isinstance`` fallback
for subclasses; output goes into one ``bytearray``. Lists of ints 0..255 become
``STRING_EXT`` exactly like ``term_to_binary`` does.
"""

from __future__ import annotations

import logging
import math
import struct
import zlib
from collections.abc import Callable
from typing import Any, cast

from erlbridge.exceptions import EncodeError
from erlbridge.term.accelerator import speedups
from erlbridge.term.model import (
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
)
from erlbridge.term.tags import MAX_ATOM_CHARACTERS, MAX_BIG_BYTES, VERSION, Tag

logger = logging.getLogger(__name__)

__all__ = ["encode", "use_compiled"]

_Encoder = Callable[[Any, bytearray], None]

#: Binaries at least this big are not copied into the output buffer but joined once
#: at the end (one copy in total, like the decoder).
_BIG_BINARY = 64 * 1024


class _Out(bytearray):
    """The output buffer; ``parts`` collects finished chunks and big binaries."""

    __slots__ = ("parts",)

    parts: list[Any]


_SMALL_INT = [bytes((97, i)) for i in range(256)]
_p_int = struct.Struct(">Bi").pack
_p_float = struct.Struct(">Bd").pack
_p_tag_u32 = struct.Struct(">BI").pack
_p_tag_u16 = struct.Struct(">BH").pack
_p_u32x3 = struct.Struct(">III").pack
_p_u32x2 = struct.Struct(">II").pack
_p_u64u32 = struct.Struct(">QI").pack
_p_small_big = struct.Struct(">BBB").pack
_p_large_big = struct.Struct(">BIB").pack
_p_bits = struct.Struct(">BIB").pack
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1

# Encoded atoms by text; bounded like the decoder's cache.
_ATOM_BYTES: dict[str, bytes] = {}
_ATOM_BYTES_MAX = 65536
_TRUE = b"w\x04true"
_FALSE = b"w\x05false"
_UNDEFINED = b"w\x09undefined"


def _atom_bytes(name: str) -> bytes:
    cached = _ATOM_BYTES.get(name)
    if cached is not None:
        return cached
    if len(name) > MAX_ATOM_CHARACTERS:
        raise EncodeError(f"atom longer than 255 characters: {name[:40]!r}...")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"atom is not valid Unicode: {name!r}") from exc
    n = len(raw)
    encoded = bytes((119, n)) + raw if n < 256 else _p_tag_u16(118, n) + raw
    if len(_ATOM_BYTES) < _ATOM_BYTES_MAX:
        _ATOM_BYTES[name] = encoded
    return encoded


def _e_atom(value: str, out: bytearray) -> None:
    out += _atom_bytes(value)


def _e_bool(value: bool, out: bytearray) -> None:
    out += _TRUE if value else _FALSE


def _e_none(value: None, out: bytearray) -> None:
    out += _UNDEFINED


def _int_bytes(value: int) -> bytes:
    if 0 <= value <= 255:
        return _SMALL_INT[value]
    if _INT32_MIN <= value <= _INT32_MAX:
        return _p_int(98, value)
    magnitude = -value if value < 0 else value
    n = (magnitude.bit_length() + 7) >> 3
    digits = magnitude.to_bytes(n, "little")
    if n < 256:
        return _p_small_big(110, n, value < 0) + digits
    if n > MAX_BIG_BYTES:  # binary_to_term (and the decoder) would refuse it
        raise EncodeError(f"integer of {n} bytes, more than binary_to_term takes")
    return _p_large_big(111, n, value < 0) + digits


def _e_int(value: int, out: bytearray) -> None:
    if 0 <= value <= 255:
        out += _SMALL_INT[value]
    else:
        out += _int_bytes(value)


def _e_float(value: float, out: bytearray) -> None:
    if not math.isfinite(value):
        raise EncodeError(f"Erlang has no float {value!r}")
    out += _p_float(70, value)


def _e_str(value: str, out: bytearray) -> None:
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"str is not valid Unicode: {value[:40]!r}") from exc
    out += _p_tag_u32(109, len(raw))
    out += raw


def _e_bytes(value: bytes | bytearray | memoryview, out: bytearray) -> None:
    size = value.nbytes if isinstance(value, memoryview) else len(value)
    out += _p_tag_u32(109, size)
    if size >= _BIG_BINARY:  # every buffer comes from encode(): an _Out
        parts = cast(_Out, out).parts
        parts.append(bytes(out))
        parts.append(value)
        out.clear()
    else:
        out += value


def _e_tuple(value: tuple[Any, ...], out: bytearray) -> None:
    n = len(value)
    if n < 256:
        out += bytes((104, n))
    else:
        out += _p_tag_u32(105, n)
    _e_items(value, out)


def _e_items(items: Any, out: bytearray) -> None:
    encoders = _ENCODERS
    for item in items:
        cls = type(item)
        if cls is int and 0 <= item <= 255:
            out += _SMALL_INT[item]
        elif cls is Atom:
            out += _atom_bytes(item)
        else:
            fn = encoders.get(cls)
            if fn is None:
                fn = _fallback(item)
            fn(item, out)


def _e_list(value: list[Any] | FrozenList, out: bytearray) -> None:
    n = len(value)
    if n == 0:
        out.append(106)
        return
    if n <= 0xFFFF and set(map(type, value)) == {int}:
        try:
            raw = bytes(value)
        except ValueError:  # an int outside 0..255: a LIST_EXT of integers
            out += _p_tag_u32(108, n)
            small = _SMALL_INT
            try:  # one C call per element while every int fits in 32 bits
                out += b"".join([small[x] if 0 <= x <= 255 else _p_int(98, x) for x in value])
            except struct.error:
                out += b"".join(map(_int_bytes, value))
            out.append(106)
        else:
            out += _p_tag_u16(107, n)
            out += raw
        return
    out += _p_tag_u32(108, n)
    _e_items(value, out)
    out.append(106)


def _e_erlstring(value: ErlString, out: bytearray) -> None:
    text = value.text
    n = len(text)
    if n == 0:
        out.append(106)
        return
    if n <= 0xFFFF:
        try:
            raw = text.encode("latin-1")
        except UnicodeEncodeError:
            pass
        else:
            out += _p_tag_u16(107, n)
            out += raw
            return
    out += _p_tag_u32(108, n)
    out += b"".join(map(_int_bytes, map(ord, text)))
    out.append(106)


def _e_map(value: dict[Any, Any] | FrozenMap, out: bytearray) -> None:
    out += _p_tag_u32(116, len(value))
    encoders = _ENCODERS
    for key, item in value.items():
        for obj in (key, item):
            fn = encoders.get(type(obj))
            if fn is None:
                fn = _fallback(obj)
            fn(obj, out)


def _e_map_pairs(value: MapPairs, out: bytearray) -> None:
    out += _p_tag_u32(116, len(value))
    _e_items([item for pair in value for item in pair], out)


def _e_improper(value: ImproperList, out: bytearray) -> None:
    out += _p_tag_u32(108, len(value.elements))
    _e_items(value.elements, out)
    _e_items((value.tail,), out)


def _e_bitstring(value: BitString, out: bytearray) -> None:
    out += _p_bits(77, len(value.data), value.bits)
    out += value.data


def _e_pid(value: Pid, out: bytearray) -> None:
    out.append(88)
    out += _atom_bytes(value.node)
    out += _p_u32x3(value.id, value.serial, value.creation)


def _e_port(value: Port, out: bytearray) -> None:
    if value.v4 or value.id > 0xFFFFFFFF:
        out.append(120)
        out += _atom_bytes(value.node)
        out += _p_u64u32(value.id, value.creation)
    else:
        out.append(89)
        out += _atom_bytes(value.node)
        out += _p_u32x2(value.id, value.creation)


def _e_reference(value: Reference, out: bytearray) -> None:
    n = len(value.ids)
    if not 1 <= n <= 5:
        raise EncodeError(f"a reference has 1..5 id words, not {n}")
    out += _p_tag_u16(90, n)
    out += _atom_bytes(value.node)
    out += struct.pack(f">I{n}I", value.creation, *value.ids)


def _e_export(value: ExportFun, out: bytearray) -> None:
    out.append(113)
    out += _atom_bytes(value.module)
    out += _atom_bytes(value.function)
    if not 0 <= value.arity <= 255:
        raise EncodeError(f"export arity out of range: {value.arity}")
    out += _SMALL_INT[value.arity]


def _e_fun(value: Fun, out: bytearray) -> None:
    out += value.raw


def _e_record(value: NativeRecord, out: bytearray) -> None:
    out += _p_tag_u32(67, len(value.fields))
    out.append(1 if value.exported else 0)
    out += _atom_bytes(value.module)
    out += _atom_bytes(value.name)
    for name, _ in value.fields:
        out += _atom_bytes(name)
    _e_items([item for _, item in value.fields], out)


def _e_local(value: LocalTerm, out: bytearray) -> None:
    raise EncodeError("a LocalTerm can only be encoded as a whole term, not inside another")


_ENCODERS: dict[type, _Encoder] = {
    int: _e_int,
    Atom: _e_atom,
    bool: _e_bool,
    type(None): _e_none,
    float: _e_float,
    str: _e_str,
    bytes: _e_bytes,
    bytearray: _e_bytes,
    memoryview: _e_bytes,
    tuple: _e_tuple,
    list: _e_list,
    FrozenList: _e_list,
    ErlString: _e_erlstring,
    dict: _e_map,
    FrozenMap: _e_map,
    MapPairs: _e_map_pairs,
    ImproperList: _e_improper,
    BitString: _e_bitstring,
    Pid: _e_pid,
    Port: _e_port,
    Reference: _e_reference,
    ExportFun: _e_export,
    Fun: _e_fun,
    NativeRecord: _e_record,
    LocalTerm: _e_local,
}

# Checked in order for subclasses (an IntEnum is an int, a str subclass a str...).
_BASES: tuple[tuple[Any, _Encoder], ...] = (
    (bool, _e_bool),
    (Atom, _e_atom),
    (int, _e_int),
    (float, _e_float),
    (str, _e_str),
    (bytes | bytearray | memoryview, _e_bytes),
    (FrozenList, _e_list),
    (tuple, _e_tuple),
    (list, _e_list),
    (dict | FrozenMap, _e_map),
)


def _fallback(obj: Any) -> _Encoder:
    for base, fn in _BASES:
        if isinstance(obj, base):
            return fn
    raise EncodeError(f"cannot encode {type(obj).__name__} as an Erlang term: {obj!r:.80}")


def _encode_pure(term: Any) -> bytes:
    out = _Out(b"\x83")
    out.parts = []
    try:
        if type(term) is LocalTerm:
            out.append(121)
            out += term.raw
        else:
            fn = _ENCODERS.get(type(term))
            if fn is None:
                fn = _fallback(term)
            fn(term, out)
    except RecursionError:
        raise EncodeError("term nested too deeply (or cyclic) to encode") from None
    except (struct.error, OverflowError) as exc:
        raise EncodeError(f"value out of range for the External Term Format: {exc}") from None
    if out.parts:
        out.parts.append(out)
        return b"".join(out.parts)
    return bytes(out)


def _encode_piece(obj: Any) -> bytes | bytearray:
    """The bytes of one term (no 131) by the pure encoder: the compiled encoder's
    callback for the types it does not take."""
    out = _Out()
    out.parts = []
    fn = _ENCODERS.get(type(obj))
    if fn is None:
        fn = _fallback(obj)
    fn(obj, out)
    if out.parts:
        out.parts.append(out)
        return b"".join(out.parts)
    return out


if speedups is None:
    _encode_plain = _encode_pure
    _encode_compiled = _encode_pure
else:
    # The compiled encoder takes the common types, reads the same atom cache and calls
    # _encode_piece for the rest; on any error it raises Fallback and the pure encoder
    # runs again, so every EncodeError is the pure one.
    speedups.configure_encoder(
        Atom, ErlString, Pid, Reference, _ATOM_BYTES, _atom_bytes, _encode_piece
    )
    _fast_encode = speedups.encode
    _Fallback = speedups.Fallback

    def _encode_compiled(term: Any) -> bytes:
        try:
            result: bytes = _fast_encode(term)
        except _Fallback:
            return _encode_pure(term)
        return result

    _encode_plain = _encode_compiled


def use_compiled(enabled: bool) -> None:
    """Encode with the compiled codec (when it is built) or with pure Python only, from
    now on in this process (see :func:`erlbridge.term.decoder.use_compiled`)."""
    global _encode_plain
    _encode_plain = _encode_compiled if enabled else _encode_pure


def encode(term: Any, *, compressed: bool | int = False) -> bytes:
    """Encode ``term`` like ``term_to_binary`` (with the leading 131).

    ``compressed=True`` (zlib level 6) or a level 0..9 gives the ``[compressed]`` form
    (tag 80), which, like OTP, is used only when it is smaller than the plain
    encoding. Never send a compressed term over distribution: it kills the connection.

    Raises:
        EncodeError: a value with no Erlang form (e.g. a set, NaN, an atom over 255
            characters, an integer over ``binary_to_term``'s size limit, a cyclic or
            too deeply nested structure, an out-of-range pid field).
    """
    plain = _encode_plain(term)
    if compressed is False:
        return plain
    level = 6 if compressed is True else int(compressed)
    if not 0 <= level <= 9:
        raise ValueError(f"compression level must be 0..9, not {compressed!r}")
    packed = zlib.compress(memoryview(plain)[1:], level)
    if len(packed) + 5 >= len(plain) - 1:  # like OTP: only when it is smaller
        return plain
    return bytes((VERSION,)) + _p_tag_u32(Tag.COMPRESSED, len(plain) - 1) + packed
