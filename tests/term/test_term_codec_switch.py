"""The test suite's codec switch (tests/conftest.py): OTP 27 variants run on the pure
codec, their siblings on the compiled one, and the switch reaches programs the test
starts (through ``ERLBRIDGE_PURE_PYTHON``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from erlbridge.term import ACCELERATED, decode, decoder, encode, encoder

TERMS = [1, -(2**70), 3.5, b"bin", [1, (2, b"x")], {b"k": [b"v"]}]


@pytest.mark.parametrize("variant", ["otp25", "otp27"])
def test_the_otp27_variant_runs_on_the_pure_codec(variant: str) -> None:
    forced = os.environ.get("ERLBRIDGE_PURE_PYTHON") == "1"
    pure = variant == "otp27" or forced or not ACCELERATED
    assert (decoder._run is decoder._run_pure) is pure
    assert (encoder._encode_plain is encoder._encode_pure) is pure
    child = subprocess.run(
        [sys.executable, "-c", "import erlbridge.term as t; print(t.ACCELERATED)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == str(not pure)
    for term in TERMS:  # and the codec in use still round-trips
        assert decode(encode(term)) == term


def test_use_compiled_switches_both_ways_with_the_same_bytes() -> None:
    if not ACCELERATED:
        pytest.skip("compiled codec not built")
    try:
        decoder.use_compiled(True)
        encoder.use_compiled(True)
        fast = [encode(t) for t in TERMS]
        assert decoder._run is not decoder._run_pure
        decoder.use_compiled(False)
        encoder.use_compiled(False)
        assert [encode(t) for t in TERMS] == fast
        assert [decode(b) for b in fast] == TERMS
        assert decoder._run is decoder._run_pure
    finally:
        pure = os.environ.get("ERLBRIDGE_PURE_PYTHON") == "1"
        decoder.use_compiled(not pure)
        encoder.use_compiled(not pure)
