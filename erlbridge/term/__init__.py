"""Erlang terms for Python: the term model, the External Term Format codec and Erlang
term text (sans-I/O, no dependencies).

Python <-> Erlang mapping (``encode`` reads the left column, ``decode`` produces it):

=================================  ===============================  ==========================
Python                             Erlang (External Term Format)    decodes back to
=================================  ===============================  ==========================
``int`` (any size)                 SMALL_INTEGER / INTEGER /        ``int``
                                   SMALL_BIG / LARGE_BIG
``float`` (finite)                 NEW_FLOAT (FLOAT_EXT decodes)    ``float``
``Atom("ok")``                     SMALL_ATOM_UTF8 / ATOM_UTF8      ``Atom``  (latin-1 ATOM_EXT
                                                                    and SMALL_ATOM_EXT decode too)
``True`` / ``False``               atoms ``true`` / ``false``       ``True`` / ``False``
``None``                           atom ``undefined``               ``Atom('undefined')`` (!)
``str``                            BINARY (UTF-8)                   ``bytes`` (!)
``bytes``/``bytearray``/           BINARY                           ``bytes`` (copied once
``memoryview``                                                      from the input)
``BitString(data, bits)``          BIT_BINARY                       ``BitString``
``tuple``                          SMALL_TUPLE / LARGE_TUPLE        ``tuple``
``list`` (``[]``)                  LIST + NIL (NIL)                 ``list`` (``[]``)
``list`` of ints 0..255, <=65535   STRING (as term_to_binary does)  ``ErlString`` (== the list)
``ErlString("abc")``               STRING (LIST of ints if a code   ``ErlString`` / ``list``
                                   point > 255 or > 65535 long)
``ImproperList((1, 2), tail)``     LIST with a non-NIL tail         ``ImproperList``
``dict``                           MAP (in the dict's order)        ``dict`` (wire order;
                                                                    ``MapPairs`` if keys
                                                                    collide in Python)
map key that is a list / map       (same)                           ``FrozenList`` /
  (unhashable in Python)                                            ``FrozenMap``, recursively
                                                                    inside tuples; both encode
                                                                    exactly as list / map
``Pid(node, id, serial, creation)``  NEW_PID (PID decodes)          ``Pid``
``Port(node, id, creation)``       NEW_PORT, V4_PORT if id > 32     ``Port`` (``v4`` remembers
                                   bits or ``v4``; PORT decodes     V4_PORT for an exact echo)
``Reference(node, creation, ids)`` NEWER_REFERENCE (NEW_REFERENCE,  ``Reference``
                                   REFERENCE decode)
``ExportFun(m, f, arity)``         EXPORT                           ``ExportFun``
``Fun``                            NEW_FUN (raw bytes echoed)       ``Fun``
``NativeRecord``                   RECORD_EXT (tag 67, OTP 29)      ``NativeRecord``
``LocalTerm`` (whole term only)    LOCAL_EXT (tag 121, raw bytes)   ``LocalTerm``
=================================  ===============================  ==========================

Notes:

* ``Atom("true")`` / ``Atom("false")`` encode like ``True`` / ``False`` and decode as
  the bools (``Atom("true") != True`` in Python).
* ``None`` is sent as ``undefined``, but ``undefined`` decodes to ``Atom('undefined')``
  (which equals ``"undefined"``), never to ``None``.
* A Python ``str`` is a binary on the wire; use ``ErlString`` (or a list of ints) for an
  Erlang string, ``Atom`` for an atom.
* A map whose keys collide in Python (``1`` and ``1.0``, ``1`` and ``true``: different
  in Erlang, equal as dict keys) decodes to ``MapPairs``, a tuple of ``(key, value)``
  pairs in wire order (keys frozen) that encodes back as the same map. A map that
  really repeats a key is a ``DecodeError`` (``binary_to_term`` refuses it too).
* A compressed term (tag 80) is decoded transparently; ``encode(..., compressed=True)``
  makes one, but never send it over distribution.
* Old forms (FLOAT_EXT, latin-1 atoms, PID_EXT, PORT_EXT, NEW_/REFERENCE_EXT) decode
  and re-encode in the form OTP 25+ emits; everything OTP 25+ emits re-encodes to the
  same bytes (checked against golden vectors from real nodes).

The codec runs a compiled fast path (``erlbridge/term/_speedups.c``, built at install
when a C compiler is present) with the pure-Python code as fallback and reference;
results and errors are the same either way (the compiled path only needs less of the
Python stack for deep terms). ``ACCELERATED`` says whether it is in use;
``ERLBRIDGE_PURE_PYTHON=1`` (read at import) turns it off.

Erlang term *text* (``parse_terms``/``parse_term``/``format_term``) uses the same model:
``"abc"`` is an ``ErlString``, ``<<"abc">>``/``<<1,2>>`` are ``bytes``, atoms are
``Atom`` (``true``/``false`` are ``bool``), ``[H|T]`` with a non-list ``T`` is an
``ImproperList``.
"""

from __future__ import annotations

from erlbridge.exceptions import set_term_formatter as _set_term_formatter
from erlbridge.term.accelerator import ACCELERATED
from erlbridge.term.decoder import (
    DEFAULT_MAX_COMPRESSED_SIZE,
    DEFAULT_MAX_DEPTH,
    decode,
    decode_prefix,
)
from erlbridge.term.encoder import encode
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
    set_text_formatter,
)
from erlbridge.term.text_format import format_term
from erlbridge.term.text_parse import parse_term, parse_terms

# Exception messages and str() of terms holding other terms render them as one line
# of Erlang text (the formatter sits above the model, so it is installed, not imported).
_set_term_formatter(lambda term: format_term(term, width=1 << 30))
set_text_formatter(lambda term: format_term(term, width=1 << 30))

__all__ = [
    "ACCELERATED",
    "DEFAULT_MAX_COMPRESSED_SIZE",
    "DEFAULT_MAX_DEPTH",
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
    "decode",
    "decode_prefix",
    "encode",
    "format_term",
    "parse_term",
    "parse_terms",
]
