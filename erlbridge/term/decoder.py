"""External Term Format decoder (``binary_to_term``).

Built for speed: one function per tag in a 256-entry dispatch table, each taking
``(data, pos, depth)`` (``pos`` just after the tag) and returning ``(term, new_pos)``;
fixed-size fields through ``struct.unpack_from``; fast paths for runs of small
integers and atoms inside lists and tuples; atoms interned in a bounded cache.

Untrusted input is bounded: nesting deeper than ``max_depth`` is a ``DecodeError``
(recursion never exceeds that depth), every length is checked against the buffer
before it is used, and a compressed term's declared size is capped. Reading past the
end of the buffer raises ``IndexError``/``struct.error`` inside the tag functions;
the entry points turn those into ``DecodeError`` at offset ``len(data)`` (the only
place such a read can fail).

One module on purpose (over 600 lines): the tag functions and the table that dispatches
to them are one unit, read together; they call each other through module globals, which
is also what keeps the pure hot path fast. The compiled codec (``accelerator.py``) takes
the common tags and hands every other one back to these functions.
"""

from __future__ import annotations

import logging
import math
import re
import struct
import zlib
from collections.abc import Callable
from typing import Any

from erlbridge.exceptions import DecodeError
from erlbridge.term.accelerator import speedups
from erlbridge.term.encoder import encode as _encode
from erlbridge.term.model import (
    Atom,
    BitString,
    ErlString,
    ExportFun,
    Fun,
    ImproperList,
    LocalTerm,
    MapPairs,
    NativeRecord,
    Pid,
    Port,
    Reference,
    freeze,
)
from erlbridge.term.tags import MAX_ATOM_CHARACTERS, MAX_BIG_BYTES, VERSION, Tag

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_COMPRESSED_SIZE",
    "DEFAULT_MAX_DEPTH",
    "decode",
    "decode_prefix",
    "use_compiled",
]

#: Default cap (bytes) on the uncompressed size a compressed term may declare.
DEFAULT_MAX_COMPRESSED_SIZE = 64 * 1024 * 1024
#: Default nesting limit (containers inside containers). Decoding recurses about two
#: Python frames per level, so 400 levels fit in the default recursion limit (1000)
#: from a shallow caller; from a deep caller the limit is reached first, which is
#: also a DecodeError ("nested too deeply for the Python stack"), never a
#: RecursionError.
DEFAULT_MAX_DEPTH = 400

_Decoder = Callable[[Any, int, int], tuple[Any, int]]

_u16 = struct.Struct(">H").unpack_from
_u32 = struct.Struct(">I").unpack_from
_i32 = struct.Struct(">i").unpack_from
_f64 = struct.Struct(">d").unpack_from
_u32u32u32 = struct.Struct(">III").unpack_from
_u32u8 = struct.Struct(">IB").unpack_from
_u64u32 = struct.Struct(">QI").unpack_from
_from_bytes = int.from_bytes
# FLOAT_EXT's text as binary_to_term reads it (Python's float() takes more).
_FLOAT_TEXT = re.compile(r"[+-]?[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?")

# Atom caches: raw bytes -> decoded value, one per encoding (the same bytes can be two
# different atoms in UTF-8 and latin-1). Bounded so hostile input cannot grow them
# without limit (Erlang's own atom table is bounded too).
_ATOM_CACHE: dict[Any, Any] = {b"true": True, b"false": False}
_LATIN1_CACHE: dict[Any, Any] = {b"true": True, b"false": False}
_ATOM_CACHE_MAX = 65536


class _Depth(Exception):
    """Internal: nesting limit reached (carries the offset)."""


# Depth is counted up towards this constant: a call with ``max_depth`` starts at
# ``_LIMIT - max_depth``, so the limit needs no shared state (thread-safe) and the hot
# path compares with a constant.
_LIMIT = 1 << 40


def _new_string(text: str) -> ErlString:
    # Skips ErlString.__init__'s type checks: the decoder always has a str.
    s = object.__new__(ErlString)
    object.__setattr__(s, "_text", text)
    return s


def _fail(message: str, offset: int) -> DecodeError:
    return DecodeError(message, offset)


# -- atoms ------------------------------------------------------------------------


def _atom_utf8(data: Any, start: int, end: int) -> Any:
    if end > len(data):
        raise _fail("atom runs past the end of the data", start)
    raw = data[start:end]
    if type(raw) is not bytes:  # memoryview input: cache keys must be bytes
        raw = bytes(raw)
    try:
        return _ATOM_CACHE[raw]
    except KeyError:
        pass
    try:
        text = str(raw, "utf-8")
    except UnicodeDecodeError:
        raise _fail("atom is not valid UTF-8", start) from None
    if len(text) > MAX_ATOM_CHARACTERS:
        raise _fail("atom longer than 255 characters", start)
    atom = Atom(text)
    if len(_ATOM_CACHE) < _ATOM_CACHE_MAX:
        _ATOM_CACHE[raw] = atom
    return atom


def _atom_latin1(data: Any, start: int, end: int) -> Any:
    # One byte per character: ATOM_EXT's 16-bit length can exceed the limit, which
    # binary_to_term refuses (and the encoder could not send such an atom back).
    if end - start > MAX_ATOM_CHARACTERS:
        raise _fail("atom longer than 255 characters", start)
    if end > len(data):
        raise _fail("atom runs past the end of the data", start)
    raw = data[start:end]
    if type(raw) is not bytes:
        raw = bytes(raw)
    try:
        return _LATIN1_CACHE[raw]
    except KeyError:
        pass
    atom = Atom(str(raw, "latin-1"))
    if len(_LATIN1_CACHE) < _ATOM_CACHE_MAX:
        _LATIN1_CACHE[raw] = atom
    return atom


def _d_small_atom_utf8(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    end = pos + 1 + data[pos]
    return _atom_utf8(data, pos + 1, end), end


def _d_atom_utf8(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    end = pos + 2 + _u16(data, pos)[0]
    return _atom_utf8(data, pos + 2, end), end


def _d_small_atom(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    end = pos + 1 + data[pos]
    return _atom_latin1(data, pos + 1, end), end


def _d_atom(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    end = pos + 2 + _u16(data, pos)[0]
    return _atom_latin1(data, pos + 2, end), end


def _read_atom(data: Any, pos: int, what: str) -> tuple[Atom, int]:
    """An atom field inside a pid/port/ref/fun/export/record (never true/false there
    as a bool: node names and module names stay atoms)."""
    tag = data[pos]
    if tag == 119:
        end = pos + 2 + data[pos + 1]
        value = _atom_utf8(data, pos + 2, end)
    elif tag == 118:
        value, end = _d_atom_utf8(data, pos + 1, 0)
    elif tag == 115:
        value, end = _d_small_atom(data, pos + 1, 0)
    elif tag == 100:
        value, end = _d_atom(data, pos + 1, 0)
    else:
        raise _fail(f"{what} must be an atom, got tag {tag}", pos)
    if value is True or value is False:
        value = Atom("true" if value else "false")
    return value, end


# -- numbers ------------------------------------------------------------------------


def _d_small_int(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    return data[pos], pos + 1


def _d_int(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    return _i32(data, pos)[0], pos + 4


def _big(data: Any, pos: int, n: int) -> tuple[int, int]:
    start = pos + 1
    end = start + n
    if end > len(data):
        raise _fail("integer runs past the end of the data", pos)
    # Any non-zero sign byte means negative, as binary_to_term reads it.
    value = _from_bytes(data[start:end], "little")
    return (-value if data[pos] else value), end


def _d_small_big(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    return _big(data, pos + 1, data[pos])


def _d_large_big(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    n = _u32(data, pos)[0]
    if n > MAX_BIG_BYTES:
        raise _fail(f"integer of {n} bytes, more than binary_to_term takes", pos)
    return _big(data, pos + 4, n)


def _d_new_float(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    value = _f64(data, pos)[0]
    if value - value != 0.0:  # NaN or infinity: no such Erlang float (badarg in OTP)
        raise _fail("NEW_FLOAT_EXT is not a finite number", pos)
    return value, pos + 8


def _d_float(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    end = pos + 31
    if end > len(data):
        raise _fail("FLOAT_EXT runs past the end of the data", pos)
    text, nul, _ = str(data[pos:end], "latin-1").partition("\x00")
    # Erlang's float syntax only: Python's float() also takes "1", "1e5", " 1.5",
    # "1_0.5", "inf"..., which binary_to_term refuses. term_to_binary always leaves
    # a NUL in the field (OTP 29 refuses a field without one).
    if not nul or _FLOAT_TEXT.fullmatch(text) is None:
        raise _fail("FLOAT_EXT is not an Erlang float", pos)
    value = float(text)
    if not math.isfinite(value):
        raise _fail("FLOAT_EXT is not a finite number", pos)
    return value, end


# -- containers ---------------------------------------------------------------------


def _int_run(data: Any, pos: int, tag: int, left: int) -> int:
    """How many of the next ``left`` elements (from ``pos``) are complete terms with the
    fixed-size integer ``tag`` (97: 2 bytes each, 98: 5 bytes each)."""
    stride = 2 if tag == 97 else 5
    mark = b"a" if tag == 97 else b"b"
    run = 0
    window = 16 if left > 16 else left
    while True:
        chunk = data[pos + run * stride : pos + (run + window) * stride : stride]
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        same = len(chunk) - len(chunk.lstrip(mark))
        run += same
        if same < window or run >= left:
            break
        window = min(window * 4, left - run)
    if pos + run * stride > len(data):  # the last one is cut short
        run -= 1
    return run


def _elements(data: Any, pos: int, n: int, depth: int) -> tuple[list[Any], int]:
    """Decode ``n`` consecutive terms. ``depth`` is the depth of the elements."""
    if depth > _LIMIT:
        raise _Depth(pos)
    if n > len(data) - pos:  # every term takes at least one byte
        raise _fail("element count exceeds the data", pos)
    out: list[Any] = []
    append = out.append
    table = _TABLE
    cache = _ATOM_CACHE
    latin1 = _LATIN1_CACHE
    i = 0
    while i < n:
        tag = data[pos]
        if tag == 119:  # atoms: cache lookup inline
            end = pos + 2 + data[pos + 1]
            try:
                value = cache.get(data[pos + 2 : end])
            except TypeError:  # a memoryview slice of a bytearray is unhashable
                value = None
            if value is None:
                value = _atom_utf8(data, pos + 2, end)
            append(value)
            pos = end
            i += 1
        elif tag == 100 and data[pos + 1] == 0:
            # ATOM_EXT up to 255 bytes (what term_to_binary emits by default up to
            # OTP 25): the same inline lookup, in the latin-1 cache.
            end = pos + 3 + data[pos + 2]
            try:
                value = latin1.get(data[pos + 3 : end])
            except TypeError:
                value = None
            if value is None:
                value = _atom_latin1(data, pos + 3, end)
            append(value)
            pos = end
            i += 1
        elif tag == 97:
            # Runs of small integers are copied out in one slice.
            if i + 1 < n and data[pos + 2] == 97 and (run := _int_run(data, pos, 97, n - i)) > 1:
                out.extend(data[pos + 1 : pos + 2 * run : 2])
                pos += 2 * run
                i += run
            else:
                append(data[pos + 1])
                pos += 2
                i += 1
        elif tag == 98:
            # Runs of INTEGER_EXT: gather the 4 value bytes of each into one buffer
            # with strided slices, then a single struct.unpack.
            if i + 1 < n and data[pos + 5] == 98 and (run := _int_run(data, pos, 98, n - i)) > 1:
                end = pos + 5 * run
                src = data[pos:end]
                if type(src) is not bytes:
                    src = bytes(src)
                buf = bytearray(4 * run)
                buf[0::4] = src[1::5]
                buf[1::4] = src[2::5]
                buf[2::4] = src[3::5]
                buf[3::4] = src[4::5]
                out.extend(struct.unpack(f">{run}i", buf))
                pos = end
                i += run
            else:
                append(_i32(data, pos + 1)[0])
                pos += 5
                i += 1
        else:
            fn = table[tag]
            if fn is None:
                raise _fail(f"unknown tag {tag}", pos)
            value, pos = fn(data, pos + 1, depth)
            append(value)
            i += 1
    return out, pos


def _d_small_tuple(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    items, pos = _elements(data, pos + 1, data[pos], depth + 1)
    return tuple(items), pos


def _d_large_tuple(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    items, pos = _elements(data, pos + 4, _u32(data, pos)[0], depth + 1)
    return tuple(items), pos


def _d_nil(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    return [], pos


def _d_string(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    start = pos + 2
    end = start + _u16(data, pos)[0]
    if end > len(data):
        raise _fail("STRING_EXT runs past the end of the data", pos)
    return _new_string(str(data[start:end], "latin-1")), end


def _d_list(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    items, pos = _elements(data, pos + 4, _u32(data, pos)[0], depth + 1)
    if data[pos] == 106:
        return items, pos + 1
    fn = _TABLE[data[pos]]
    if fn is None:
        raise _fail(f"unknown tag {data[pos]}", pos)
    tail, end = fn(data, pos + 1, depth + 1)
    if not items:  # no elements: just the tail, as binary_to_term reads it
        return tail, end
    if isinstance(tail, list | ErlString):
        # A non-canonical encoding ([1 | [2]] as LIST_EXT + LIST_EXT): normalise.
        return items + list(tail), end
    return ImproperList(tuple(items), tail), end


def _d_map(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    n = _u32(data, pos)[0]
    items, end = _elements(data, pos + 4, 2 * n, depth + 1)
    it = iter(items)
    try:
        result = dict(zip(it, it, strict=True))
    except TypeError:  # an unhashable key (list or map): use frozen forms
        it = iter(items)
        result = {freeze(k): v for k, v in zip(it, it, strict=True)}
    if len(result) != n:
        # Keys equal as dict keys: either equal in Python only (1, 1.0, true: different
        # Erlang terms, kept as MapPairs) or really repeated, which binary_to_term
        # refuses too.
        it = iter(items)
        pairs = MapPairs((freeze(k), v) for k, v in zip(it, it, strict=True))
        if len({_encode(k) for k, _ in pairs}) != n:
            raise _fail("map with a repeated key", pos)
        return pairs, end
    return result, end


def _d_binary(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    start = pos + 4
    end = start + _u32(data, pos)[0]
    if end > len(data):
        raise _fail("binary runs past the end of the data", pos)
    # bytes(bytes_slice) is the slice itself: exactly one copy for bytes input.
    return bytes(data[start:end]), end


def _d_bit_binary(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    size, bits = _u32u8(data, pos)
    start = pos + 5
    end = start + size
    if end > len(data):
        raise _fail("bitstring runs past the end of the data", pos)
    if (size == 0) != (bits == 0) or bits > 8:
        raise _fail("bad bit count in BIT_BINARY_EXT", pos + 4)
    if bits == 8 or size == 0:  # a whole binary, as binary_to_term reads it
        return bytes(data[start:end]), end
    return BitString(bytes(data[start:end]), bits), end


# -- identifiers ----------------------------------------------------------------------


# Pids and references are built through their slot descriptors: about twice as fast
# as the frozen dataclass __init__ (which goes through object.__setattr__).
_new = object.__new__
_pid_node = Pid.__dict__["node"].__set__
_pid_id = Pid.__dict__["id"].__set__
_pid_serial = Pid.__dict__["serial"].__set__
_pid_creation = Pid.__dict__["creation"].__set__
_ref_node = Reference.__dict__["node"].__set__
_ref_creation = Reference.__dict__["creation"].__set__
_ref_ids = Reference.__dict__["ids"].__set__
_REF_IDS = [struct.Struct(f">I{n}I").unpack_from for n in range(6)]


def _d_new_pid(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    node, pos = _read_atom(data, pos, "pid node")
    ident, serial, creation = _u32u32u32(data, pos)
    pid = _new(Pid)
    _pid_node(pid, node)
    _pid_id(pid, ident)
    _pid_serial(pid, serial)
    _pid_creation(pid, creation)
    return pid, pos + 12


def _old_creation(data: Any, pos: int) -> int:
    """The one-byte creation of the pre-OTP 23 forms, which only had 2 bits."""
    creation: int = data[pos]
    if creation > 3:
        raise _fail(f"creation {creation} in an old-form identifier (0..3 allowed)", pos)
    return creation


def _d_pid(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    node, pos = _read_atom(data, pos, "pid node")
    ident, serial = struct.unpack_from(">II", data, pos)
    return Pid(node, ident, serial, _old_creation(data, pos + 8)), pos + 9


def _d_new_port(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    node, pos = _read_atom(data, pos, "port node")
    ident, creation = struct.unpack_from(">II", data, pos)
    return Port(node, ident, creation), pos + 8


def _d_v4_port(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    node, pos = _read_atom(data, pos, "port node")
    ident, creation = _u64u32(data, pos)
    return Port(node, ident, creation, v4=True), pos + 12


def _d_port(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    node, pos = _read_atom(data, pos, "port node")
    return Port(node, _u32(data, pos)[0], _old_creation(data, pos + 4)), pos + 5


def _ref_words(data: Any, pos: int) -> int:
    n: int = _u16(data, pos)[0]
    if not 1 <= n <= 5:
        raise _fail(f"reference with {n} words (1..5 allowed)", pos)
    return n


def _d_newer_ref(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    n = _ref_words(data, pos)
    node, pos = _read_atom(data, pos + 2, "reference node")
    creation, *ids = _REF_IDS[n](data, pos)
    ref = _new(Reference)
    _ref_node(ref, node)
    _ref_creation(ref, creation)
    _ref_ids(ref, tuple(ids))
    return ref, pos + 4 + 4 * n


def _old_ref_ids(ids: tuple[int, ...], pos: int) -> tuple[int, ...]:
    # The old forms' first word had 18 bits; binary_to_term refuses more.
    if ids[0] > 0x3FFFF:
        raise _fail("first reference word over 18 bits in an old-form reference", pos)
    return ids


def _d_new_ref(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    n = _ref_words(data, pos)
    node, pos = _read_atom(data, pos + 2, "reference node")
    creation = _old_creation(data, pos)
    ids = _old_ref_ids(struct.unpack_from(f">{n}I", data, pos + 1), pos + 1)
    return Reference(node, creation, ids), pos + 1 + 4 * n


def _d_ref(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    node, pos = _read_atom(data, pos, "reference node")
    ids = _old_ref_ids(struct.unpack_from(">I", data, pos), pos)
    return Reference(node, _old_creation(data, pos + 4), ids), pos + 5


# -- funs and records ----------------------------------------------------------------


def _d_export(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    module, pos = _read_atom(data, pos, "export module")
    function, pos = _read_atom(data, pos, "export function")
    if data[pos] == 97:
        return ExportFun(module, function, data[pos + 1]), pos + 2
    # binary_to_term takes the arity in any integer encoding. Above 255 OTP 25 and 29
    # accept it but OTP 27 crashes re-encoding such a fun: refused here.
    if data[pos] not in (98, 110, 111):
        raise _fail("export arity must be an integer", pos)
    arity, end = _decode_at(data, pos, 0)
    if not 0 <= arity <= 255:
        raise _fail(f"export arity out of range: {arity}", pos)
    return ExportFun(module, function, arity), end


def _d_new_fun(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    if depth > _LIMIT:
        raise _Depth(pos)
    size = _u32(data, pos)[0]
    end = pos + size
    if size < 29 or end > len(data):
        raise _fail("NEW_FUN_EXT size is out of range", pos)
    arity = data[pos + 4]
    uniq = bytes(data[pos + 5 : pos + 21])
    index, num_free = struct.unpack_from(">II", data, pos + 21)
    if num_free > 255:  # binary_to_term's limit (a fun has at most 255 arguments)
        raise _fail(f"fun with {num_free} free variables (255 at most)", pos + 25)
    module, p = _read_atom(data, pos + 29, "fun module")
    # The fields binary_to_term type-checks: two integers and the creator's pid.
    old_index, q = _decode_at(data, p, depth + 1)
    if type(old_index) is not int:
        raise _fail("fun old index must be an integer", p)
    old_uniq, p = _decode_at(data, q, depth + 1)
    if type(old_uniq) is not int:
        raise _fail("fun old uniq must be an integer", q)
    pid, q = _decode_at(data, p, depth + 1)
    if type(pid) is not Pid:
        raise _fail("fun creator must be a pid", p)
    free, p = _elements(data, q, num_free, depth + 1)
    if p != end:
        raise _fail("NEW_FUN_EXT size does not match its contents", pos)
    raw = bytes(data[pos - 1 : end])
    return Fun(raw, module, arity, index, uniq, old_index, old_uniq, pid, tuple(free)), end


def _d_record(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    n = _u32(data, pos)[0]
    flags = data[pos + 4]
    if flags > 1:
        raise _fail(f"unknown RECORD_EXT flags {flags}", pos + 4)
    module, p = _read_atom(data, pos + 5, "record module")
    name, p = _read_atom(data, p, "record name")
    if n > len(data) - p:
        raise _fail("record field count exceeds the data", pos)
    names = []
    for _ in range(n):
        field_name, p = _read_atom(data, p, "record field name")
        names.append(field_name)
    values, p = _elements(data, p, n, depth + 1)
    return NativeRecord(module, name, tuple(zip(names, values, strict=True)), bool(flags)), p


def _decode_at(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    tag = data[pos]
    fn = _TABLE[tag]
    if fn is None:
        raise _fail(f"unknown tag {tag}", pos)
    result: tuple[Any, int] = fn(data, pos + 1, depth)
    return result


_TABLE: list[_Decoder | None] = [None] * 256
for _tag, _fn in {
    Tag.SMALL_INTEGER_EXT: _d_small_int,
    Tag.INTEGER_EXT: _d_int,
    Tag.SMALL_BIG_EXT: _d_small_big,
    Tag.LARGE_BIG_EXT: _d_large_big,
    Tag.NEW_FLOAT_EXT: _d_new_float,
    Tag.FLOAT_EXT: _d_float,
    Tag.SMALL_ATOM_UTF8_EXT: _d_small_atom_utf8,
    Tag.ATOM_UTF8_EXT: _d_atom_utf8,
    Tag.SMALL_ATOM_EXT: _d_small_atom,
    Tag.ATOM_EXT: _d_atom,
    Tag.SMALL_TUPLE_EXT: _d_small_tuple,
    Tag.LARGE_TUPLE_EXT: _d_large_tuple,
    Tag.NIL_EXT: _d_nil,
    Tag.STRING_EXT: _d_string,
    Tag.LIST_EXT: _d_list,
    Tag.MAP_EXT: _d_map,
    Tag.BINARY_EXT: _d_binary,
    Tag.BIT_BINARY_EXT: _d_bit_binary,
    Tag.NEW_PID_EXT: _d_new_pid,
    Tag.PID_EXT: _d_pid,
    Tag.NEW_PORT_EXT: _d_new_port,
    Tag.V4_PORT_EXT: _d_v4_port,
    Tag.PORT_EXT: _d_port,
    Tag.NEWER_REFERENCE_EXT: _d_newer_ref,
    Tag.NEW_REFERENCE_EXT: _d_new_ref,
    Tag.REFERENCE_EXT: _d_ref,
    Tag.EXPORT_EXT: _d_export,
    Tag.NEW_FUN_EXT: _d_new_fun,
    Tag.RECORD_EXT: _d_record,
}.items():
    _TABLE[_tag] = _fn


# -- entry points ----------------------------------------------------------------------


def _as_buffer(data: Any) -> Any:
    if type(data) is bytes:
        return data
    if isinstance(data, bytes):
        return bytes(data)
    if isinstance(data, bytearray):
        return memoryview(data).toreadonly()
    if isinstance(data, memoryview):
        if data.c_contiguous and data.format == "B" and data.ndim == 1:
            return data.toreadonly()
        return memoryview(data.tobytes())
    raise TypeError(f"decode needs bytes, bytearray or memoryview, not {type(data).__name__}")


def _decompress(data: Any, pos: int, max_compressed_size: int) -> tuple[bytes, int]:
    """``pos`` is just after tag 80. Returns the inner term (tag first) and the end."""
    size = _u32(data, pos)[0]
    if size > max_compressed_size:
        raise _fail(
            f"compressed term declares {size} bytes, more than max_compressed_size="
            f"{max_compressed_size}",
            pos,
        )
    inflater = zlib.decompressobj()
    try:
        inner = inflater.decompress(data[pos + 4 :], size)
    except zlib.error as exc:
        raise _fail(f"bad zlib data in compressed term: {exc}", pos + 4) from None
    if len(inner) != size or not inflater.eof:
        raise _fail("compressed term does not inflate to its declared size", pos + 4)
    end = len(data) - len(inflater.unused_data)
    return inner, end


def _run_pure(data: Any, pos: int, max_depth: int, max_compressed_size: int) -> tuple[Any, int]:
    """Decode one term whose version byte is at ``pos``; return (term, end)."""
    try:
        if data[pos] != VERSION:
            raise _fail(f"expected version byte 131, got {data[pos]}", pos)
        tag = data[pos + 1]
        fn = _TABLE[tag]
        if fn is not None:
            term, end = fn(data, pos + 2, _LIMIT - max_depth)
        elif tag == Tag.COMPRESSED:
            inner, end = _decompress(data, pos + 2, max_compressed_size)
            try:
                term, used = _decode_at(inner, 0, _LIMIT - max_depth)
            except DecodeError as exc:
                raise _fail(f"in compressed term: {exc}", pos + 6) from None
            if used != len(inner):
                raise _fail("compressed term has trailing bytes", pos + 6 + used)
        elif tag == Tag.LOCAL_EXT:
            # The local format is private to the emulator that made it and carries no
            # length, so the term extends to the end of the data.
            term, end = LocalTerm(bytes(data[pos + 2 :])), len(data)
        else:
            raise _fail(f"unknown tag {tag}", pos + 1)
    except (IndexError, struct.error):
        raise _fail("unexpected end of data", len(data)) from None
    except _Depth as exc:
        raise _fail(f"term nested deeper than max_depth={max_depth}", exc.args[0]) from None
    except RecursionError:  # only if the caller is already near the recursion limit
        raise _fail("term nested too deeply for the Python stack", pos) from None
    if end > len(data):  # a length ran past the end without an IndexError on the way
        raise _fail("unexpected end of data", len(data))
    return term, end


if speedups is None:
    _run = _run_pure
    _run_compiled = _run_pure
else:
    # The compiled decoder takes the common tags and calls back into this module for
    # the rest (same atom caches, same tag functions); on any error or odd input it
    # raises Fallback and the pure decoder runs again, so every DecodeError (message,
    # offset) is the pure one.
    speedups.configure_decoder(
        Atom,
        ErlString,
        Pid,
        Reference,
        ImproperList,
        _ATOM_CACHE,
        _LATIN1_CACHE,
        _atom_utf8,
        _atom_latin1,
        _TABLE,
        _LIMIT,
    )
    _fast_decode = speedups.decode
    _Fallback = speedups.Fallback

    def _run_compiled(
        data: Any, pos: int, max_depth: int, max_compressed_size: int
    ) -> tuple[Any, int]:
        try:
            result: tuple[Any, int] = _fast_decode(data, pos, max_depth)
        except _Fallback:
            return _run_pure(data, pos, max_depth, max_compressed_size)
        return result

    _run = _run_compiled


def use_compiled(enabled: bool) -> None:
    """Decode with the compiled codec (when it is built) or with pure Python only, from
    now on in this process. The test suite runs cases both ways in one process with it;
    ``ERLBRIDGE_PURE_PYTHON=1`` sets the start (accelerator.py)."""
    global _run
    _run = _run_compiled if enabled else _run_pure


def decode(
    data: bytes | bytearray | memoryview[Any],
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_compressed_size: int = DEFAULT_MAX_COMPRESSED_SIZE,
) -> Any:
    """Decode one external term (``binary_to_term``): ``data`` starts with 131 and holds
    exactly one term.

    Binaries come back as ``bytes`` copied once from ``data`` (pass ``bytes`` rather
    than a ``bytearray`` for the cheapest path). See :mod:`erlbridge.term` for the type
    mapping.

    Raises:
        DecodeError: malformed, truncated or trailing data, nesting deeper than
            ``max_depth``, or a compressed term declaring more than
            ``max_compressed_size`` bytes; ``.offset`` says where.
    """
    buf = data if type(data) is bytes else _as_buffer(data)
    term, end = _run(buf, 0, max_depth, max_compressed_size)
    if end != len(buf):
        raise _fail(f"{len(buf) - end} trailing bytes after the term", end)
    return term


def decode_prefix(
    data: bytes | bytearray | memoryview[Any],
    offset: int = 0,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_compressed_size: int = DEFAULT_MAX_COMPRESSED_SIZE,
) -> tuple[Any, int]:
    """Decode the one 131-prefixed term starting at ``offset``; return ``(term, end)``
    where ``end`` is the offset just after it. Bytes after the term are ignored.

    Raises:
        DecodeError: as :func:`decode` (offsets are absolute positions in ``data``).
    """
    buf = _as_buffer(data)
    if not 0 <= offset <= len(buf):
        raise _fail("offset outside the data", offset)
    return _run(buf, offset, max_depth, max_compressed_size)
