"""Run one fuzz target for a bounded time and report how many inputs it tried.

    python fuzz/run.py TARGET --seconds 15 [--corpus DIR] [--engine atheris|random]

TARGET is one of fuzz/targets.py's TARGETS (``all`` runs each in turn, splitting the
time). The atheris engine (coverage-guided libFuzzer; ``pip install atheris``) is used when
it is installed, else a seeded random mutator. The last line printed for each target is
``fuzz TARGET: N inputs in S s (engine)``; a finding (an exception other than the
documented one) exits non-zero and leaves the input in ``--artifacts`` (default
``fuzz/artifacts``).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess  # noqa: TID251 -- a tool, not a sans-I/O layer
import sys
import tempfile
import time  # noqa: TID251
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _child(target: str, seconds: float, corpus: Path, artifacts: Path) -> None:
    """Inside the child process: atheris over ``target``."""
    import atheris  # noqa: PLC0415

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE))
    with atheris.instrument_imports(include=["erlbridge", "targets"]):
        import targets  # noqa: PLC0415

    one = targets.TARGETS[target]
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(targets.SEEDS[target]):
        (corpus / f"seed-{i}").write_bytes(seed)
    artifacts.mkdir(parents=True, exist_ok=True)
    args = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={max(1, int(seconds))}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-max_len=4096",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/{target}-",
    ]
    atheris.Setup(args, one)
    atheris.Fuzz()


def run_atheris(target: str, seconds: float, corpus: Path, artifacts: Path) -> tuple[int, int]:
    """Run atheris in a child process; returns (inputs tried, exit status)."""
    cmd = [sys.executable, __file__, target, "--seconds", str(seconds), "--corpus",
           str(corpus), "--artifacts", str(artifacts), "--child"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False,
                          timeout=seconds + 120)
    out = proc.stdout + proc.stderr
    match = re.search(r"stat::number_of_executed_units:\s*(\d+)", out) or re.search(
        r"Done (\d+) runs", out)
    count = int(match.group(1)) if match else 0
    if proc.returncode != 0:
        sys.stderr.write(out[-6000:])
    return count, proc.returncode


def run_random(target: str, seconds: float, artifacts: Path) -> tuple[int, int]:
    """No atheris: mutate the seeds at random (byte flips, cuts, splices) for the budget."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE))
    import targets  # noqa: PLC0415

    one = targets.TARGETS[target]
    seeds = targets.SEEDS[target] or [b""]
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "1")))
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            op = rng.randrange(4)
            pos = rng.randrange(len(data) + 1)
            if op == 0 and data:
                data[pos % len(data)] = rng.randrange(256)
            elif op == 1:
                data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif op == 2:
                del data[pos : pos + rng.randint(1, 16)]
            else:
                other = rng.choice(seeds)
                data[pos:] = other[rng.randrange(len(other) + 1):]
        try:
            one(bytes(data))
        except Exception:
            artifacts.mkdir(parents=True, exist_ok=True)
            (artifacts / f"{target}-crash-{count}").write_bytes(bytes(data))
            raise
        count += 1
    return count, 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--artifacts", type=Path, default=HERE / "artifacts")
    parser.add_argument("--engine", choices=("atheris", "random"), default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ns, _ = parser.parse_known_args()
    if ns.child:
        _child(ns.target, ns.seconds, ns.corpus, ns.artifacts)
        return 0
    sys.path.insert(0, str(HERE))
    import targets  # noqa: PLC0415

    names = list(targets.TARGETS) if ns.target == "all" else [ns.target]
    seconds = ns.seconds / len(names) if ns.target == "all" else ns.seconds
    engine = ns.engine
    if engine is None:
        try:
            import atheris  # noqa: F401, PLC0415

            engine = "atheris"
        except ImportError:
            engine = "random"
    status = 0
    for name in names:
        start = time.monotonic()
        if engine == "atheris":
            with tempfile.TemporaryDirectory() as tmp:
                corpus = ns.corpus / name if ns.corpus else Path(tmp) / "corpus"
                count, rc = run_atheris(name, seconds, corpus, ns.artifacts)
        else:
            count, rc = run_random(name, seconds, ns.artifacts)
        elapsed = time.monotonic() - start
        print(f"fuzz {name}: {count} inputs in {elapsed:.1f} s ({engine})", flush=True)
        status = status or rc
    return status


if __name__ == "__main__":
    sys.exit(main())
