"""Read a compiled BEAM file in Python: chunks, atoms, exports, imports, attributes,
literals and ``beam_lib:md5`` (pure: bytes in, data out).

A BEAM file is an IFF container (``FOR1``, size, ``BEAM``, then chunks ``Id:4, Size:4,
Data``, each padded to 4 bytes). What the planner needs survives ``{mode, prod}``
builds without debug_info: the atom table, ``Code``, ``ImpT``/``ExpT`` (imports and
exports), ``LitT`` (zlib-compressed literals), ``Attr`` (the module attributes in the
External Term Format: ``-behaviour``, ``-vsn``).

:func:`md5` follows ``beam_lib:md5/1`` (stdlib ``beam_lib.erl``, ``md5_chunks/0``): the MD5
of the chunks ``Atom AtU8 Code StrT ImpT ExpT FunT LitT Meta`` in that order, with the
``OldUniq`` word of each ``FunT`` entry zeroed. It is also ``M:module_info(md5)`` on a
node. Chunks that differ between build directories (``Dbgi``, ``CInf``, ``Line``,
``Docs``) are not part of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from erlbridge.exceptions import DecodeError, PlanError
from erlbridge.term import decode

__all__ = ["Beam", "BeamError", "read_beam"]

MD5_CHUNKS = ("Atom", "AtU8", "Code", "StrT", "ImpT", "ExpT", "FunT", "LitT", "Meta")
MAX_LITERALS_BYTES = 64 << 20  # a bigger literal table is no beam the compiler wrote
MAX_BEAM_BYTES = 256 << 20


class BeamError(PlanError, ValueError):
    """The bytes are not a BEAM file this reader understands (``path`` says which)."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


@dataclass(frozen=True, slots=True)
class Beam:
    """What the planner reads from one beam.

    ``exports`` and ``imports`` are ``(module, function, arity)`` / ``(function, arity)``
    tuples of plain strings; ``attributes`` maps each attribute name to the list of its
    values, in file order (``-behaviour(gen_server)`` gives ``{"behaviour": [gen_server]}``).
    """

    module: str
    chunks: dict[str, bytes] = field(repr=False)
    atoms: tuple[str, ...] = field(repr=False)
    exports: frozenset[tuple[str, int]] = field(repr=False)
    imports: frozenset[tuple[str, str, int]] = field(repr=False)
    attributes: dict[str, list[Any]] = field(repr=False)

    @property
    def md5(self) -> bytes:
        """``beam_lib:md5/1`` of this beam (16 bytes)."""
        h = hashlib.md5()
        for cid in MD5_CHUNKS:
            data = self.chunks.get(cid)
            if data is None:
                continue
            h.update(_zero_old_uniq(data) if cid == "FunT" else data)
        return h.digest()

    @property
    def attr_bytes(self) -> bytes:
        """The raw ``Attr`` chunk (b"" when absent)."""
        return self.chunks.get("Attr", b"")

    @property
    def behaviours(self) -> tuple[str, ...]:
        """Behaviour names (``-behaviour`` and ``-behavior``), as plain strings."""
        out: list[str] = []
        for key in ("behaviour", "behavior"):
            out += [str.__str__(b) for b in self.attributes.get(key, []) if isinstance(b, str)]
        return tuple(out)

    @property
    def imported_modules(self) -> frozenset[str]:
        """Every module this beam calls by an external call (``erlang`` included)."""
        return frozenset(m for m, _f, _a in self.imports)

    def literals(self) -> list[Any]:
        """The decoded literal table (``LitT``); [] when the module has none.

        Literals the term layer cannot decode (e.g. a fun) are skipped, not fatal.
        """
        data = self.chunks.get("LitT")
        if not data:
            return []
        try:
            return self._literals(data)
        except (struct.error, zlib.error, IndexError) as exc:
            raise BeamError(f"malformed literal table: {exc}", self.module) from exc

    def _literals(self, data: bytes) -> list[Any]:
        (size,) = struct.unpack_from(">I", data, 0)
        raw = data[4:]
        if size:  # 0 means stored uncompressed (OTP 26+ compiler option)
            if size > MAX_LITERALS_BYTES:
                raise BeamError(f"literal table of {size} bytes", self.module)
            d = zlib.decompressobj()
            raw = d.decompress(raw, size)
            if len(raw) != size:
                raise BeamError("truncated literal table", self.module)
        out: list[Any] = []
        (count,) = struct.unpack_from(">I", raw, 0)
        pos = 4
        for _ in range(count):
            (n,) = struct.unpack_from(">I", raw, pos)
            with contextlib.suppress(DecodeError):
                out.append(decode(raw[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        return out


def _zero_old_uniq(data: bytes) -> bytes:
    # FunT: count, then entries of 6 words; beam_lib zeroes the last (OldUniq).
    head, body = data[:4], bytearray(data[4:])
    for start in range(0, len(body) - 23, 24):
        body[start + 20 : start + 24] = b"\0\0\0\0"
    return head + bytes(body)


def _chunks(data: bytes, path: str) -> Iterator[tuple[str, bytes]]:
    if len(data) < 12 or data[:4] != b"FOR1" or data[8:12] != b"BEAM":
        raise BeamError("not a BEAM file", path)
    (size,) = struct.unpack_from(">I", data, 4)
    end = min(len(data), 8 + size)
    pos = 12
    while pos + 8 <= end:
        cid = data[pos : pos + 4].decode("latin-1")
        (n,) = struct.unpack_from(">I", data, pos + 4)
        if pos + 8 + n > end:
            raise BeamError(f"chunk {cid} runs past the end", path)
        yield cid, data[pos + 8 : pos + 8 + n]
        pos += 8 + ((n + 3) & ~3)


def _atoms(data: bytes, utf8: bool, path: str) -> tuple[str, ...]:
    (count,) = struct.unpack_from(">i", data, 0)
    pos = 4
    out: list[str] = []
    long_form = count < 0  # OTP 28+: lengths in the compact term encoding
    for _ in range(abs(count)):
        if long_form:
            n, pos = _compact_len(data, pos, path)
        else:
            n = data[pos]
            pos += 1
        out.append(data[pos : pos + n].decode("utf-8" if utf8 else "latin-1"))
        pos += n
    return tuple(out)


def _compact_len(data: bytes, pos: int, path: str) -> tuple[int, int]:
    """A length in the compact term encoding (tag bits ignored: it is an integer)."""
    b = data[pos]
    if not b & 0x08:
        return b >> 4, pos + 1
    if not b & 0x10:
        return ((b & 0xE0) << 3) | data[pos + 1], pos + 2
    nbytes = (b >> 5) + 2
    if nbytes > 8:
        raise BeamError("atom length too large", path)
    return int.from_bytes(data[pos + 1 : pos + 1 + nbytes], "big"), pos + 1 + nbytes


def _triples(data: bytes) -> list[tuple[int, int, int]]:
    (count,) = struct.unpack_from(">I", data, 0)
    return [struct.unpack_from(">III", data, 4 + 12 * i) for i in range(count)]


def read_beam(data: bytes, path: str = "") -> Beam:
    """Parse a beam's bytes (gzip-compressed too, as relx's prod mode writes them);
    BeamError if they are no BEAM file."""
    if data[:2] == b"\x1f\x8b":
        d = zlib.decompressobj(wbits=31)
        try:
            data = d.decompress(data, MAX_BEAM_BYTES)
        except zlib.error as exc:
            raise BeamError(f"bad gzip data: {exc}", path) from exc
        if d.unconsumed_tail:
            raise BeamError(f"more than {MAX_BEAM_BYTES} bytes uncompressed", path)
    chunks: dict[str, bytes] = {}
    for cid, body in _chunks(data, path):
        chunks.setdefault(cid, body)
    try:
        if "AtU8" in chunks:
            atoms = _atoms(chunks["AtU8"], True, path)
        elif "Atom" in chunks:
            atoms = _atoms(chunks["Atom"], False, path)
        else:
            raise BeamError("no atom table", path)

        def atom(i: int) -> str:
            return atoms[i - 1]

        exp = _triples(chunks.get("ExpT", b"\0" * 4))
        exports = frozenset((atom(f), a) for f, a, _label in exp)
        imports = frozenset(
            (atom(m), atom(f), a) for m, f, a in _triples(chunks.get("ImpT", b"\0" * 4))
        )
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise BeamError(f"malformed atom/import/export table: {exc}", path) from exc
    attributes: dict[str, list[Any]] = {}
    if "Attr" in chunks:
        try:
            term = decode(chunks["Attr"])
        except DecodeError as exc:
            raise BeamError(f"malformed Attr chunk: {exc}", path) from exc
        for item in term if isinstance(term, list) else []:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                values = item[1] if isinstance(item[1], list) else [item[1]]
                attributes.setdefault(str.__str__(item[0]), []).extend(values)
    return Beam(atoms[0], chunks, atoms, exports, imports, attributes)

