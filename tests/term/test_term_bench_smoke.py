"""The term benchmark runs (smoke: one quick round, no peers) and reports every target."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_term.py"


def test_bench_term_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_term_smoke", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_term_smoke"] = bench  # dataclasses look their module up
    spec.loader.exec_module(bench)
    assert bench.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    payloads = ("p1 rpc tuple", "p2 lists:seq", "p3 1 MiB", "p4 which_", "p4 latin-1", "p5 pids")
    for payload in payloads:
        assert out.count(payload) >= 3, payload  # decode row, encode row, target rows
    assert "decode ≤ one copy of the payload" in out
    assert "Peers not measured" in out
