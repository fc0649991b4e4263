"""The fuzz targets (fuzz/targets.py): seeds pass the oracle, hand-made hostile inputs pass
it, and a bounded fuzzing run (marker ``fuzz``; ``ERLBRIDGE_FUZZ_SECONDS``, default 20 s
across the four targets; the pure-codec pass runs the two that reach the codec again)
finds nothing and reports the number of inputs tried."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "fuzz"))

import targets  # noqa: E402


@pytest.mark.parametrize("name", sorted(targets.TARGETS))
def test_fuzz_seeds_pass_the_oracle(name: str) -> None:
    seeds = targets.SEEDS[name]
    assert len(seeds) >= 3
    for seed in seeds:
        targets.TARGETS[name](seed)
        for cut in (1, len(seed) // 2, len(seed) - 1):
            targets.TARGETS[name](seed[:cut])  # truncations too


def test_fuzz_oracle_catches_undocumented_errors() -> None:
    """The oracle is not vacuous: a decoder bug (an escaping IndexError) is reported."""
    original = targets.decode

    def broken(data: bytes, **kw: object) -> object:
        raise IndexError("bug")

    targets.decode = broken  # type: ignore[assignment]
    try:
        with pytest.raises(IndexError):
            targets.term_decode(b"\x83a\x01")
    finally:
        targets.decode = original


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("term_decode", b"\x83" + b"l\x00\x00\x00\x01" * 3000 + b"j"),  # deep nesting
        ("term_decode", b"\x83m\xff\xff\xff\xff"),  # binary length past the end
        ("term_decode", b"\x83P\xff\xff\xff\xff\x78\x9c"),  # huge declared size
        ("text_parse", b"[" * 5000),
        ("text_parse", b"16#" + b"f" * 20000 + b"."),
        ("handshake", b"\x03" + b"\xff\xff\xff\xff"),
        ("handshake", b"\x00\x00\x02sx\x00\x05snok"),
        ("dist_frames", b"\x00" + b"\xff\xff\xff\xff"),
        ("dist_frames", b"\x00\x00\x00\x00\x05p\x83h\x00"),
    ],
)
def test_fuzz_hostile_inputs(name: str, data: bytes) -> None:
    targets.TARGETS[name](data)


#: the targets that go through the term codec: the only ones the pure pass runs again
#: (text_parse and handshake run the same code with or without the compiled codec)
CODEC_TARGETS = ("term_decode", "dist_frames")


@pytest.mark.fuzz
@pytest.mark.timeout(900)
def test_fuzz_bounded_run(capsys: pytest.CaptureFixture[str]) -> None:
    seconds = float(os.environ.get("ERLBRIDGE_FUZZ_SECONDS", "20"))
    pure_pass = os.environ.get("ERLBRIDGE_PURE_PYTHON") == "1"
    names = CODEC_TARGETS if pure_pass else tuple(targets.TARGETS)
    each = seconds / len(targets.TARGETS)
    out = ""
    for name in names:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "fuzz" / "run.py"), name, "--seconds", str(each)],
            capture_output=True, text=True, cwd=ROOT, check=False, timeout=each + 600,
        )
        out += proc.stdout
        assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]
    counts = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^fuzz (\w+): (\d+) inputs", out, re.MULTILINE)
    }
    with capsys.disabled():
        print("\n" + out.strip())
    assert set(counts) == set(names), out
    assert all(n > 0 for n in counts.values()), counts


# Findings of the fuzzers, kept as regressions (all fixed).
MAP_KEY_COLLIDING = bytes.fromhex("83740000000174000000026a61016a61026101")
# second finding (973k inputs), same root cause: a MapPairs key holding "" decodes, but
# "" re-encodes as [] and the re-decoded key holds an unhashable list
MAP_KEY_ROUNDTRIP = bytes.fromhex("8374000000026a7701627400000002770566616c73656b000061007701016"
                                  "17a")
# third finding (CI run, 82k inputs): a huge segment size made the text parser build a
# gigantic integer (MemoryError) instead of raising TermSyntaxError
HUGE_SEGMENT = b"<<1:455555555555555555, 2/utf8>>. [a|b2]."


@pytest.mark.parametrize("data", [MAP_KEY_COLLIDING, MAP_KEY_ROUNDTRIP])
def test_fuzz_regression_map_key_with_colliding_keys(data: bytes) -> None:
    # A map used as a map key whose keys collide in Python decodes and round-trips.
    targets.term_decode(data)


def test_fuzz_regression_huge_binary_segment() -> None:
    targets.text_parse(HUGE_SEGMENT)
