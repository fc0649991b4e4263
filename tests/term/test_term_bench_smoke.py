"""The term benchmark runs (smoke: one quick round, no peers) and reports every target.

It runs in a fresh interpreter, as users run it: in the test process, the benchmark's
``gc.collect()`` calls walked the whole suite's heap (27 s instead of 2 s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_term.py"


def test_bench_term_smoke() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout
    payloads = ("p1 rpc tuple", "p2 lists:seq", "p3 1 MiB", "p4 which_", "p4 latin-1", "p5 pids")
    for payload in payloads:
        assert out.count(payload) >= 3, payload  # decode row, encode row, target rows
    assert "decode ≤ one copy of the payload" in out
    assert "Peers not measured" in out
