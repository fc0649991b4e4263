"""The compiled codec (erlbridge/term/_speedups.c) against the pure-Python one.

The compiled decoder/encoder either gives exactly what the pure code gives (same types,
same values, same bytes, same end offset) or raises its private Fallback, after which
the pure code runs. Checked on the golden vectors from real nodes, the acceptance
cases (hostile edges), random Hypothesis terms and a bounded random-mutation run
(``ERLBRIDGE_SPEEDUPS_FUZZ_SECONDS``, default 3). The whole term suite also runs on
the pure codec (tests/conftest.py: scripts/test.sh's second pass), so both paths pass
every test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import shutil
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erlbridge.exceptions import DecodeError, EncodeError
from erlbridge.term import (
    ACCELERATED,
    Atom,
    BitString,
    ErlString,
    ExportFun,
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
    encode,
)
from erlbridge.term import decoder as decoder_module
from erlbridge.term import encoder as encoder_module
from erlbridge.term.accelerator import speedups

HERE = Path(__file__).resolve().parent
PURE = os.environ.get("ERLBRIDGE_PURE_PYTHON") == "1"


def _load(name: str, file: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, HERE / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


golden = _load("term_golden_vectors", "golden_vectors.py")
acceptance = _load("term_acceptance_cases", "acceptance_cases.py")

SEEDS: list[bytes] = []
for _vector in golden.load_all():
    SEEDS.extend(_vector.forms.values())
SEEDS.extend(acceptance.cases().values())
SEEDS = list(dict.fromkeys(SEEDS))

needs_speedups = pytest.mark.skipif(speedups is None, reason="compiled codec not in use")


def _can_build() -> bool:
    """A C compiler and Python's headers: what pip install -e . needs to build it."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    return shutil.which(cc) is not None and headers.exists()


def test_accelerated_flag() -> None:
    """The dev venv builds the extension (pip install -e .): CI proves it built."""
    if PURE:
        assert not ACCELERATED
    elif _can_build():
        assert ACCELERATED, "erlbridge.term._speedups missing: run pip install -e ."
    assert (speedups is not None) == ACCELERATED


# -- comparing ----------------------------------------------------------------------------


def _fingerprint(term: Any) -> Any:
    """Exact types all the way down (Atom/str, ErlString/list, bool/int, MapPairs...),
    float bits, map order."""
    kind = type(term).__name__
    if isinstance(term, int):
        return (kind, hex(term))
    if isinstance(term, float):
        return (kind, term.hex())
    if isinstance(term, list | tuple):
        return (kind, [_fingerprint(x) for x in term])
    if isinstance(term, dict | FrozenMap):
        return (kind, [(_fingerprint(k), _fingerprint(v)) for k, v in term.items()])
    if isinstance(term, ImproperList):
        return (kind, _fingerprint(term.elements), _fingerprint(term.tail))
    if isinstance(term, NativeRecord):
        return (kind, repr(term.module), repr(term.name), _fingerprint(term.fields))
    if isinstance(term, Fun):
        return (kind, term.raw, _fingerprint(term.pid), _fingerprint(term.free_vars))
    return (kind, repr(term))


def _pure_decode(data: bytes, max_depth: int) -> tuple[Any, int] | DecodeError:
    try:
        return decoder_module._run_pure(data, 0, max_depth, 1 << 20)
    except DecodeError as exc:
        return exc


def check_decode(data: bytes, max_depth: int = 400) -> bool:
    """True when the compiled decoder answered (rather than falling back)."""
    assert speedups is not None
    expected = _pure_decode(data, max_depth)
    try:
        term, end = speedups.decode(data, 0, max_depth)
    except speedups.Fallback:
        pass
    else:
        assert not isinstance(expected, DecodeError), (data, term, expected)
        assert _fingerprint(term) == _fingerprint(expected[0]), data
        assert end == expected[1], data
        return True
    # the public entry point gives the pure answer, error included
    try:
        result = decode(data, max_depth=max_depth, max_compressed_size=1 << 20)
    except DecodeError as exc:
        if not isinstance(expected, DecodeError):  # a whole term, then more bytes
            assert expected[1] < len(data) and "trailing" in str(exc), data
            return False
        assert (str(exc), exc.offset) == (str(expected), expected.offset), data
    else:
        assert not isinstance(expected, DecodeError) and expected[1] == len(data), data
        assert _fingerprint(result) == _fingerprint(expected[0]), data
    return False


def check_encode(term: Any) -> bool:
    """True when the compiled encoder answered (rather than falling back)."""
    assert speedups is not None
    try:
        expected: bytes | Exception = encoder_module._encode_pure(term)
    except Exception as exc:  # EncodeError, or what a malformed model object raises
        expected = exc
    try:
        out = speedups.encode(term)
    except speedups.Fallback:
        return False
    assert out == expected, term
    return True


# -- golden vectors and hostile cases ---------------------------------------------------


@needs_speedups
def test_golden_and_acceptance_inputs_decode_the_same() -> None:
    answered = sum(check_decode(seed) for seed in SEEDS)
    assert answered > len(SEEDS) // 2  # the compiled path really runs


@needs_speedups
def test_golden_terms_encode_the_same() -> None:
    for seed in SEEDS:
        try:
            term = decode(seed)
        except DecodeError:
            continue
        # only a LocalTerm (whole term only) is left to the pure encoder
        assert check_encode(term) or type(term) is LocalTerm


@needs_speedups
def test_truncations_and_depths() -> None:
    for seed in SEEDS[:400]:
        for cut in range(1, len(seed), max(1, len(seed) // 16)):
            check_decode(seed[:cut])
        check_decode(seed + b"\x00")
    deep = b"\x83" + b"h\x01" * 30 + b"j"
    for limit in (0, 1, 29, 30, 31, 400):
        check_decode(deep, max_depth=limit)
    deep_list = b"\x83" + b"l\x00\x00\x00\x01" * 30 + b"j" * 31
    for limit in (29, 30, 31):
        check_decode(deep_list, max_depth=limit)
    # deeper than the Python stack allows the pure decoder: a term or that DecodeError
    try:
        decode(b"\x83" + b"h\x01" * 900 + b"j", max_depth=10_000)
    except DecodeError as exc:
        assert "Python stack" in str(exc)
    # past the C path's own nesting cap (2000) the pure decoder answers
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        assert not check_decode(b"\x83" + b"h\x01" * 6000 + b"j", max_depth=10_000)
        assert check_decode(b"\x83" + b"h\x01" * 300 + b"j", max_depth=10_000)
    finally:
        sys.setrecursionlimit(limit)


@needs_speedups
def test_special_cases_fall_back_or_agree() -> None:
    cases = [
        b"\x83t\x00\x00\x00\x02a\x01a\x02F?\xf0\x00\x00\x00\x00\x00\x00a\x03",  # 1 and 1.0
        b"\x83t\x00\x00\x00\x02a\x01a\x02a\x01a\x03",  # a repeated key
        b"\x83t\x00\x00\x00\x01l\x00\x00\x00\x01a\x01ja\x02",  # a list as key
        b"\x83l\x00\x00\x00\x01a\x01a\x02",  # improper
        b"\x83l\x00\x00\x00\x01a\x01k\x00\x01\x02",  # non-canonical tail
        b"\x83l\x00\x00\x00\x00a\x02",  # no elements: just the tail
        b"\x83n\x08\x01\xff\xff\xff\xff\xff\xff\xff\xff",  # -(2**64 - 1)
        b"\x83n\x08\x01\x00\x00\x00\x00\x00\x00\x00\x80",  # -(2**63)
        b"\x83n\x00\x01",  # -0
        b"\x83n\x09\x00" + bytes(8) + b"\x01",  # 2**64
        b"\x83F\x7f\xf0\x00\x00\x00\x00\x00\x00",  # infinity
        b"\x83Xw\x04true\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01",  # node 'true'
        b"\x83Z\x00\x01w\x05false\x00\x00\x00\x01\x00\x00\x00\x02",
        b"\x83Z\x00\x06w\x01a" + bytes(28),  # 6 words
        b"\x83P\x00\x00\x00\x02x\x9cKd\x02\x00\x00\xcb\x00d",  # compressed
        b"\x83y\x01\x02",  # LOCAL_EXT
        b"\x83R\x00",  # atom cache ref
        b"\x83d\x01\x00" + b"a" * 256,  # latin-1 atom over 255
        b"\x83w\x02\xc3\x28",  # bad UTF-8
    ]
    for case in cases:
        check_decode(case)
    assert decode(cases[3]) == ImproperList((1,), 2)
    assert decode(cases[6]) == -(2**64 - 1)


@needs_speedups
def test_buffers_of_every_kind() -> None:
    wire = encode((Atom("ok"), [1, 2, 3], {b"k": 1.5}, ErlString("s")))
    expected = decode(wire)
    for buf in (bytearray(wire), memoryview(wire), memoryview(bytearray(wire))):
        assert _fingerprint(decode(buf)) == _fingerprint(expected)
    assert speedups.decode(memoryview(wire).toreadonly(), 0, 400)[1] == len(wire)


@needs_speedups
def test_encoder_special_values() -> None:
    class MyInt(int):
        pass

    class MyStr(str):
        pass

    big = bytes(range(256)) * 300
    values: list[Any] = [
        True,
        False,
        None,
        0,
        255,
        256,
        -1,
        2**31 - 1,
        -(2**31),
        2**31,
        -(2**31) - 1,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        2**64,
        -(2**200),
        MyInt(5),
        MyStr("x"),
        Atom("true"),
        Atom(""),
        "héllo",
        "\ud800",
        b"",
        bytearray(b"ab"),
        memoryview(b"cd"),
        big,
        [big, memoryview(big)],
        -0.0,
        1.5,
        float("nan"),
        float("inf"),
        [],
        [1, 2, 255],
        [1, 256],
        [True, 1],
        list(range(70000)),
        [MyInt(1)],
        (),
        tuple(range(300)),
        {},
        {Atom("a"): [1, (2,)], b"k": {}},
        ErlString(""),
        ErlString("abc"),
        ErlString("é"),
        ErlString("€"),
        ErlString("a" * 70000),
        Pid(Atom("a@b"), 1, 2, 3),
        Pid("a@b", 2**32, 0, 0),  # type: ignore[arg-type]
        Pid(Atom("a@b"), True, 0, 0),
        Pid(b"a@b", 1, 0, 0),  # type: ignore[arg-type]
        Reference(Atom("a@b"), 1, (1, 2, 3)),
        Reference(Atom("a@b"), 1, ()),
        Reference(Atom("a@b"), 1, (1, 2, 3, 4, 5, 6)),
        Reference(Atom("a@b"), 1, [1, 2]),  # type: ignore[arg-type]
        Port(Atom("a@b"), 1, 2),
        ExportFun(Atom("m"), Atom("f"), 1),
        BitString(b"\xff", 3),
        ImproperList((1, 2), 3),
        MapPairs(((1, 2), (1.0, 3))),
        LocalTerm(b"\x01\x02"),
        [LocalTerm(b"\x01")],
        {1, 2},
        Atom("x" * 256),
    ]
    for value in values:
        check_encode(value)
        check_encode([value, (value,), {b"k": value}])
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(EncodeError):
        encode(cyclic)
    nested: Any = 1
    for _ in range(10_000):
        nested = (nested,)
    with pytest.raises(EncodeError):
        encode(nested)


@needs_speedups
def test_caches_are_shared() -> None:
    atom = decode(encode(Atom("shared_cache_probe")))
    assert decode(encode(Atom("shared_cache_probe"))) is atom
    assert decoder_module._ATOM_CACHE[b"shared_cache_probe"] is atom
    assert "shared_cache_probe" in encoder_module._ATOM_BYTES


# -- random terms and random bytes -------------------------------------------------------

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
scalars = st.one_of(
    st.integers(),
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.builds(Atom, text),
    st.booleans(),
    st.none(),
    st.binary(max_size=20),
    text,
    st.builds(ErlString, text),
    st.builds(
        Pid, st.just(Atom("n@h")), st.integers(0, 2**32), st.integers(0, 9), st.integers(0, 9)
    ),
    st.builds(
        Reference,
        st.just(Atom("n@h")),
        st.integers(0, 2**32 - 1),
        st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=5).map(tuple),
    ),
)
terms = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.lists(inner, max_size=6).map(tuple),
        st.dictionaries(st.one_of(st.integers(), st.builds(Atom, text), st.binary()), inner),
        st.builds(
            lambda items, tail: ImproperList(tuple(items), tail),
            st.lists(inner, min_size=1, max_size=3),
            scalars.filter(lambda tail: not isinstance(tail, ErlString)),
        ),
    ),
    max_leaves=30,
)


@needs_speedups
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms)
def test_random_terms(term: Any) -> None:
    if not check_encode(term):
        with contextlib.suppress(EncodeError):  # a pid id over 32 bits
            encode(term)
        return
    wire = encode(term)
    check_decode(wire)
    check_decode(encode(term, compressed=True))


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        where = rng.randrange(max(1, len(data)))
        if op == 0 and data:
            data[where] = rng.randrange(256)
        elif op == 1:
            data[where:where] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif op == 2 and len(data) > 2:
            del data[where : where + rng.randint(1, 4)]
        elif op == 3 and data:
            data[where] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, 97, 104, 106, 108, 116, 119))
        else:
            other = rng.choice(SEEDS)
            data[where:] = other[rng.randrange(len(other)) :]
    return bytes(data)


@needs_speedups
def test_random_mutations_of_the_golden_vectors() -> None:
    seconds = float(os.environ.get("ERLBRIDGE_SPEEDUPS_FUZZ_SECONDS", "3"))
    rng = random.Random(int(os.environ.get("ERLBRIDGE_SPEEDUPS_FUZZ_SEED", "15")))
    deadline = time.monotonic() + seconds
    tried = answered = 0
    while time.monotonic() < deadline:
        data = _mutate(rng, rng.choice(SEEDS))
        if len(data) < 2:
            continue
        data = b"\x83" + data[1:]
        answered += check_decode(data)
        tried += 1
    print(f"speedups mutation fuzz: {tried} inputs, {answered} answered by the C path")
    assert tried > 0
