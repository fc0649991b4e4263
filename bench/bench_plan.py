"""Time to plan an upgrade, and the live plan check on many local nodes.

* ``plan``: ``plan_upgrade(OLD, NEW)`` on the realistic release (``_build/realistic/otp25``
  as ``scripts/build-realistic.sh``-style builds leave it: ``shop-1.0.0`` and
  ``shop-2.0.0`` release directories) — reading both builds and diffing every beam in
  Python, generating the appups, and ``systools:make_relup`` in a local ``erl``. Also
  the diff alone (read + compare, no Erlang). With ``--old/--new`` any two builds.
* ``check``: ``Driver.check_plan(plan)`` on N nodes (default 20) of the OLD release's
  tarball started with :class:`erlbridge.testing.LocalCluster` on this machine.

Usage: ``python bench/bench_plan.py [--rounds 5] [--nodes 20] [--old DIR --new DIR
--tarball OLD.tar.gz] [--smoke]``. Prints a Markdown table; ``--smoke`` is one round on
3 nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from erlbridge.asyncio import Node  # noqa: E402
from erlbridge.driver import Driver  # noqa: E402
from erlbridge.plan import open_build, plan_upgrade  # noqa: E402
from erlbridge.plan.diff import diff_builds  # noqa: E402
from erlbridge.testing import LocalCluster, local_otp_release  # noqa: E402


def _default_builds() -> tuple[Path, Path, Path]:
    base = REPO / "_build" / "realistic" / f"otp{local_otp_release()}"
    return base / "shop-1.0.0", base / "shop-2.0.0", base / "shop-1.0.0.tar.gz"


def bench_plan(old: Path, new: Path, rounds: int) -> tuple[list[float], list[float], object]:
    totals, diffs = [], []
    plan = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        a, b = open_build(old), open_build(new)
        d = diff_builds(a, b)
        diffs.append(time.perf_counter() - t0)
        assert d.changed
        t0 = time.perf_counter()
        plan = plan_upgrade(old, new)
        totals.append(time.perf_counter() - t0)
    return totals, diffs, plan


async def _check(cluster: LocalCluster, plan: object, rounds: int) -> list[float]:
    times = []
    async with Node(f"bench{secrets.token_hex(3)}@127.0.0.1", cookie=cluster.cookie,
                    epmd_port=cluster.epmd_port) as node:
        for n in cluster.node_names:
            await node.connect(n, timeout=30)
        drv = Driver(node, cluster.node_names, node_timeout=120)
        for _ in range(rounds):
            t0 = time.perf_counter()
            report = await drv.check_plan(plan)
            times.append(time.perf_counter() - t0)
            assert report.ok, str(report)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--old", type=Path)
    ap.add_argument("--new", type=Path)
    ap.add_argument("--tarball", type=Path, help="the OLD release tarball the nodes run")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.nodes = 1, 3
    old, new, tarball = _default_builds()
    old, new, tarball = args.old or old, args.new or new, args.tarball or tarball
    for p in (old, new, tarball):
        if not p.exists():
            sys.exit(f"{p} is missing: build the realistic release first, or pass "
                     "--old/--new/--tarball")
    totals, diffs, plan = bench_plan(old, new, args.rounds)
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        t0 = time.perf_counter()
        with LocalCluster(release_tarball=tarball, size=args.nodes, workdir=Path(tmp)) as c:
            started = time.perf_counter() - t0
            checks = asyncio.run(_check(c, plan, args.rounds))
    med = statistics.median
    cpus = os.cpu_count()
    print(f"Command: `python bench/bench_plan.py --rounds {args.rounds} --nodes {args.nodes}`"
          f" — {old.name} -> {new.name} ({old.parent}), OTP {local_otp_release()}, "
          f"Python {platform.python_version()}, {cpus} CPUs; medians of {args.rounds} rounds.")
    print()
    print("| what | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    rows = [("diff only (read both builds, compare every beam)", diffs),
            ("plan_upgrade (diff + appups + systools:make_relup)", totals),
            (f"check_plan on {args.nodes} local nodes", checks)]
    for label, xs in rows:
        print(f"| {label} | {med(xs):.3f} | {min(xs):.3f} | {max(xs):.3f} |")
    print()
    print(f"({args.nodes} nodes started in {started:.1f} s, not counted.)")


if __name__ == "__main__":
    main()
