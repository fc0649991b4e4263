"""The Erlang term model: Python types for Erlang values that have no native twin.

Every type here is immutable and hashable (as long as what it contains is hashable),
prints Erlang syntax with ``str()`` and a constructor call with ``repr()``.
See :mod:`erlbridge.term` for the whole Python <-> Erlang mapping table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, SupportsIndex, overload

from erlbridge.term.quoting import format_atom, format_string

logger = logging.getLogger(__name__)

__all__ = [
    "Atom",
    "BitString",
    "ErlString",
    "ExportFun",
    "FrozenList",
    "FrozenMap",
    "Fun",
    "ImproperList",
    "LocalTerm",
    "MapPairs",
    "NativeRecord",
    "Pid",
    "Port",
    "Reference",
    "set_text_formatter",
]

# str() of an improper list or a native record is the Erlang text of the terms inside,
# which is text_format's job; text_format needs the types defined here, so it is
# installed from outside (erlbridge.term does it on import) instead of imported.
_text_formatter: Callable[[Any], str] = repr


def set_text_formatter(formatter: Callable[[Any], str]) -> None:
    """Install the one-line Erlang text formatter used by ``str()`` of the terms that
    contain other terms (:class:`ImproperList`, :class:`BitString`,
    :class:`NativeRecord`)."""
    global _text_formatter  # set once, on import of erlbridge.term
    _text_formatter = formatter


class Atom(str):
    """An Erlang atom. A ``str`` subclass, so ``Atom("ok") == "ok"``.

    ``str()`` gives Erlang syntax (quoted when needed, e.g. ``'EXIT'``);
    ``repr()`` gives ``Atom('ok')``. Use ``atom.name`` (or ``str.__str__``) for the
    bare text.
    """

    __slots__ = ()

    @property
    def name(self) -> str:
        """The atom's text without any quoting."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"

    def __str__(self) -> str:
        return format_atom(self)


class ErlString:
    """An Erlang string: a list of code points (``STRING_EXT`` on the wire).

    Compares equal to another ``ErlString`` with the same text, to a Python ``str``
    with the same text and to a list of ints with the same code points. Hashes like
    its text. Iterating yields the code points (ints); ``len`` is the number of code
    points; ``str()`` prints Erlang syntax (``"1.0.0"``); ``.text`` is the Python str.
    """

    __slots__ = ("_text",)

    _text: str

    def __init__(self, text: str | Iterable[int] = "") -> None:
        if isinstance(text, str):
            value = text
        else:
            try:
                value = "".join(map(chr, text))
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"not a list of code points: {text!r}") from exc
        object.__setattr__(self, "_text", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("ErlString is immutable")

    @property
    def text(self) -> str:
        """The string as a Python ``str``."""
        return self._text

    def __iter__(self) -> Iterator[int]:
        return map(ord, self._text)

    def __len__(self) -> int:
        return len(self._text)

    @overload
    def __getitem__(self, index: SupportsIndex) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> ErlString: ...
    def __getitem__(self, index: SupportsIndex | slice) -> int | ErlString:
        if isinstance(index, slice):
            return ErlString(self._text[index])
        return ord(self._text[index])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ErlString):
            return self._text == other._text
        if isinstance(other, str):
            return self._text == other
        if isinstance(other, list):
            text = self._text
            if len(other) != len(text):
                return False
            for char, item in zip(text, other, strict=True):
                if type(item) is not int or item != ord(char):
                    return False
            return True
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._text)

    def __repr__(self) -> str:
        return f"ErlString({self._text!r})"

    def __str__(self) -> str:
        return format_string(self._text)


@dataclass(frozen=True, slots=True)
class Pid:
    """An Erlang process identifier (``NEW_PID_EXT``); echo it exactly as received."""

    node: Atom
    id: int
    serial: int
    creation: int

    def __str__(self) -> str:
        return f"<{self.node}.{self.id}.{self.serial}>"


@dataclass(frozen=True, slots=True)
class Reference:
    """An Erlang reference (``NEWER_REFERENCE_EXT``); ``ids`` holds 1..5 32-bit words."""

    node: Atom
    creation: int
    ids: tuple[int, ...]

    def __str__(self) -> str:
        words = ".".join(str(i) for i in reversed(self.ids))
        return f"#Ref<{self.node}.{words}>"


@dataclass(frozen=True, slots=True)
class Port:
    """An Erlang port. ``v4`` (not part of equality) records that the port arrived as
    ``V4_PORT_EXT`` (OTP 27+), so it is echoed in the same form; otherwise a port whose id
    fits in 32 bits is sent as ``NEW_PORT_EXT``, which OTP 25+ reads."""

    node: Atom
    id: int
    creation: int
    v4: bool = field(default=False, compare=False, repr=False)

    def __str__(self) -> str:
        return f"#Port<{self.node}.{self.id}>"


@dataclass(frozen=True, slots=True)
class ImproperList:
    """A list whose tail is not ``[]``: ``[1, 2 | tail]``. ``elements`` is never empty."""

    elements: tuple[Any, ...]
    tail: Any

    def __post_init__(self) -> None:
        if not isinstance(self.elements, tuple):
            object.__setattr__(self, "elements", tuple(self.elements))
        if not self.elements:
            raise ValueError("an improper list needs at least one element")
        if isinstance(self.tail, list | ErlString | FrozenList):
            raise ValueError("the tail of an ImproperList must not be a list")

    def __str__(self) -> str:
        return _text_formatter(self)


@dataclass(frozen=True, slots=True)
class BitString:
    """A bitstring whose size is not a multiple of 8: ``bits`` (1..8) bits of the last
    byte of ``data`` are used (the high ones), as in ``BIT_BINARY_EXT``. The unused low
    bits are cleared, as Erlang does. (``bits=8`` is a whole binary; the decoder gives
    ``bytes`` for it, like ``binary_to_term``.)"""

    data: bytes
    bits: int

    def __post_init__(self) -> None:
        data = bytes(self.data)
        if not data or not 1 <= self.bits <= 8:
            raise ValueError("BitString needs data and 1 <= bits <= 8")
        mask = (0xFF << (8 - self.bits)) & 0xFF
        if data[-1] & ~mask:
            data = data[:-1] + bytes((data[-1] & mask,))
        object.__setattr__(self, "data", data)

    def __str__(self) -> str:
        return _text_formatter(self)


@dataclass(frozen=True, slots=True)
class ExportFun:
    """An external fun ``fun Module:Function/Arity`` (``EXPORT_EXT``)."""

    module: Atom
    function: Atom
    arity: int

    def __str__(self) -> str:
        return f"fun {self.module}:{self.function}/{self.arity}"


@dataclass(frozen=True, slots=True)
class Fun:
    """A local fun (``NEW_FUN_EXT``), opaque to Python: ``raw`` holds the bytes from the
    tag to the end of the fun and is sent back unchanged. The other fields are decoded
    from ``raw``. Two funs are equal when their decoded fields are (so the same fun
    read from a latin-1-atom and a UTF-8-atom encoding compares equal); ``raw`` takes
    no part in equality."""

    raw: bytes = field(compare=False, repr=False)
    module: Atom
    arity: int
    index: int
    uniq: bytes = field(repr=False)
    old_index: int = field(repr=False)
    old_uniq: int = field(repr=False)
    pid: Any = field(repr=False)
    free_vars: tuple[Any, ...] = field(repr=False, hash=False)

    def __str__(self) -> str:
        return f"#Fun<{self.module}.{self.index}.{self.old_uniq}>"


@dataclass(frozen=True, slots=True)
class NativeRecord:
    """An OTP 29 native record (``RECORD_EXT``, tag 67): ``#module:name{f = V, ...}``.

    ``fields`` is a tuple of ``(field_name, value)`` pairs in wire order; ``exported``
    is the is_exported flag.
    """

    module: Atom
    name: Atom
    fields: tuple[tuple[Atom, Any], ...]
    exported: bool = False

    def __getitem__(self, key: str) -> Any:
        for name, value in self.fields:
            if name == key:
                return value
        raise KeyError(key)

    def __str__(self) -> str:
        return _text_formatter(self)


@dataclass(frozen=True, slots=True)
class LocalTerm:
    """A ``LOCAL_EXT`` term (``term_to_binary(T, [local])``, OTP 26+): only the node that
    made it can decode it, so it is kept as raw bytes (after the tag, to the end of the
    data) and echoed unchanged."""

    raw: bytes

    def __str__(self) -> str:
        return f"#LocalTerm<{len(self.raw)} bytes>"


class FrozenList(tuple[Any, ...]):
    """The frozen form of a list used as (part of) a map key, so the key is hashable.

    Encodes as an Erlang list; compares equal to the list and to other FrozenLists.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenList):
            return tuple.__eq__(self, other)
        if isinstance(other, list | ErlString):
            return list(self) == other
        return False

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        # Equal to an ErlString with the same code points, so hash like its text.
        if all(type(v) is int and 0 <= v <= 0x10FFFF for v in self):
            return hash("".join(map(chr, self)))
        return hash((FrozenList, tuple(self)))

    def __repr__(self) -> str:
        return f"FrozenList({list(self)!r})"


class FrozenMap(Mapping[Any, Any]):
    """The frozen form of a map used as (part of) a map key: an immutable, hashable
    mapping that encodes as an Erlang map and compares equal to the dict."""

    __slots__ = ("_hash", "_items")

    def __init__(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = ()) -> None:
        self._items: dict[Any, Any] = dict(items)
        self._hash: int | None = None

    def __getitem__(self, key: Any) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._items == other._items
        if isinstance(other, dict):
            return self._items == other
        return False

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._items.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


class MapPairs(tuple[tuple[Any, Any], ...]):
    """A map whose keys collide as Python dict keys (Erlang tells ``1`` from ``1.0`` and
    ``1`` from ``true``; Python does not): the ``(key, value)`` pairs in wire order.
    Encodes as an Erlang map; only the decoder makes these."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"MapPairs({tuple(self)!r})"


def freeze(value: Any) -> Any:
    """Return a hashable form of ``value`` (lists -> FrozenList, dicts -> FrozenMap,
    recursively through tuples, improper lists and records). Used for map keys."""
    if isinstance(value, list):
        return FrozenList(freeze(v) for v in value)
    if isinstance(value, dict):
        return FrozenMap((freeze(k), freeze(v)) for k, v in value.items())
    if type(value) is tuple:
        return tuple(freeze(v) for v in value)
    if isinstance(value, MapPairs):
        return MapPairs((freeze(k), freeze(v)) for k, v in value)
    if isinstance(value, ImproperList):
        return ImproperList(tuple(freeze(v) for v in value.elements), freeze(value.tail))
    if isinstance(value, NativeRecord):
        fields = tuple((k, freeze(v)) for k, v in value.fields)
        return NativeRecord(value.module, value.name, fields, value.exported)
    return value
