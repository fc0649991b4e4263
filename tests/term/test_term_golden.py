"""The codec against golden vectors made by term_to_binary on real OTP 25/27/29 nodes
(committed; no erl needed here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from erlbridge.term import (
    ErlString,
    FrozenList,
    FrozenMap,
    Fun,
    LocalTerm,
    NativeRecord,
    decode,
    decode_prefix,
    encode,
    format_term,
    parse_term,
)
from erlbridge.term.model import Pid, Port, Reference

_spec = importlib.util.spec_from_file_location(
    "term_golden_vectors", Path(__file__).with_name("golden_vectors.py")
)
assert _spec is not None and _spec.loader is not None
golden = importlib.util.module_from_spec(_spec)
sys.modules["term_golden_vectors"] = golden
_spec.loader.exec_module(golden)

VECTORS = golden.load_all()


def canon(term: object) -> bytes:
    """Encoding with map entries sorted: equal iff the terms are equal as Erlang terms
    (Erlang prints large maps in an order of its own, not the wire order)."""
    if isinstance(term, dict | FrozenMap):
        items = sorted(canon(k) + canon(v) for k, v in term.items())
        return b"t" + b"".join(items) + b"."
    if isinstance(term, tuple) and not isinstance(term, FrozenList):
        return b"h" + b"".join(map(canon, term)) + b"."
    if isinstance(term, list | ErlString | FrozenList):
        return b"l" + b"".join(map(canon, term)) + b"."
    return encode(term)


IDS = [v.id for v in VECTORS]


def test_vectors_cover_every_release_and_tag() -> None:
    assert {v.otp for v in VECTORS} >= {"25"}
    tags = set()
    for v in VECTORS:
        for form in v.forms.values():
            tags.add(form[1])
            if form[1] != 80:
                tags.update(form[1:])  # rough: every byte value appearing
    # The tags OTP emits (a rough check that the corpus reaches them).
    for tag in (97, 98, 110, 111, 70, 99, 100, 119, 118, 104, 105, 106, 107, 108):
        assert tag in tags
    names = {v.name for v in VECTORS}
    assert {"pid_self", "port_cat", "ref_alias", "fun_closure", "export_map"} <= names


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_every_form_decodes_to_the_same_term(vector: Any) -> None:
    term = decode(vector.plain)
    canonical = encode(term)
    for name, form in vector.forms.items():
        if isinstance(term, LocalTerm) and name != "plain":
            continue  # only the plain form was made with [local]
        if isinstance(term, Fun):  # opaque: equal by fields, echoed byte for byte
            assert decode(form) == term, name
            uncompressed = {"compressed": vector.plain, "compressed2": vector.minor2}
            assert encode(decode(form)) == uncompressed.get(name, form), name
        else:
            assert encode(decode(form)) == canonical, name
        if not isinstance(term, LocalTerm):  # LOCAL_EXT runs to the end of the data
            assert decode_prefix(b"xyz" + form + b"tail", 3)[1] == len(form) + 3, name


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_encode_is_byte_exact(vector: Any) -> None:
    """Everything a real node emits re-encodes to the same bytes (minor_version 2 is
    what OTP 26+ emits by default and what distribution uses)."""
    term = decode(vector.plain)
    if isinstance(term, LocalTerm | Fun):  # kept raw: echoed exactly
        assert encode(term) == vector.plain
        assert encode(decode(vector.minor2)) == vector.minor2
        return
    assert encode(term) == vector.minor2
    assert encode(term, compressed=True) == vector.compressed2
    if vector.otp != "25":  # OTP 26+ term_to_binary defaults to UTF-8 atoms
        assert encode(term) == vector.plain


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS if v.text], ids=[v.id for v in VECTORS if v.text]
)
def test_erlang_printed_text_parses_to_the_same_term(vector: Any) -> None:
    term = decode(vector.plain)
    assert canon(parse_term(vector.text)) == canon(term)


def _has_literal_syntax(term: object) -> bool:
    if isinstance(term, Pid | Port | Reference | Fun | LocalTerm | NativeRecord):
        return False
    if isinstance(term, list | tuple):
        return all(map(_has_literal_syntax, term))
    if isinstance(term, dict):
        return all(map(_has_literal_syntax, [*term.keys(), *term.values()]))
    return True


TEXT_VECTORS = [v for v in VECTORS if _has_literal_syntax(decode(v.plain))]


@pytest.mark.parametrize("vector", TEXT_VECTORS, ids=[v.id for v in TEXT_VECTORS])
def test_format_term_reads_back(vector: Any) -> None:
    term = decode(vector.plain)
    text = format_term(term)
    assert encode(parse_term(text)) == encode(term)
    if len(text) < 20_000:  # pretty-printing the largest ones adds time, not coverage
        assert canon(parse_term(format_term(term, width=40))) == canon(term)


def test_display_only_vectors_are_the_expected_ones() -> None:
    names = {v.name for v in VECTORS} - {v.name for v in TEXT_VECTORS}
    assert names <= {
        "fun_0", "fun_closure", "fun_closure_bin", "pid_self", "pid_spawned", "pid_init",
        "port_cat", "port_first", "ref_make", "ref_alias", "ref_monitor", "rpc_call",
        "gen_call", "reply_mixed", "local_ext", "native_record", "native_record_exported",
    }  # fmt: skip
    assert len(TEXT_VECTORS) > len(VECTORS) * 0.7


def test_known_decodings() -> None:
    by_name = {(v.otp, v.name): decode(v.plain) for v in VECTORS}
    assert by_name[("25", "float_m0")] == 0.0
    assert str(by_name[("25", "float_m0")]) == "-0.0"
    assert by_name[("25", "map_bool_keys")] == {True: 1, False: 0}
    port = by_name[("25", "port_cat")]
    assert isinstance(port, Port)
    assert not port.v4
    ref = by_name[("25", "ref_make")]
    assert isinstance(ref, Reference)
    assert len(ref.ids) == 3
    if ("27", "port_cat") in by_name:
        assert by_name[("27", "port_cat")].v4
    if ("29", "native_record") in by_name:
        record = by_name[("29", "native_record")]
        assert isinstance(record, NativeRecord)
        assert record.module == "mymod"
        assert record.name == "rec"
        assert [k for k, _ in record.fields] == ["x", "y", "z"]
        assert record["y"] == b"b"
        assert not record.exported
        assert by_name[("29", "native_record_exported")].exported
