"""Upgrade wall time on 1, 5 and 20 local nodes: the driver (all nodes at once) versus the
same upgrade done node after node (what per-node shell scripts do today).

Two workloads, both real:

* ``direct`` -- a direct-mode script on plain ``erl`` nodes running the tiny ``drvt`` app
  of the driver tests: push the new ``.beam`` files, ``check_script`` on every node, then
  ``eval_script`` (load_object_code, point_of_no_return, suspend, load, code_change,
  resume). Rounds alternate between versions 2 and 3, so every round really loads code.
* ``release`` (``--release``) -- the fixture release 1.0.0 -> 2.0.0 through
  ``release_handler`` (upload of the 8 MB tarball, unpack, check_install, install,
  make_permanent) on fresh target systems (``erlbridge.testing.LocalCluster``); one run
  per size and mode, because a target system can be upgraded once.

Sequential = one ``Driver`` per node, awaited one after another. Parallel = one
``Driver`` over all nodes. Rounds are shuffled; medians are reported with ratios.

Usage: ``python bench/bench_upgrade.py [--sizes 1,5,20] [--rounds 5] [--release]
[--smoke]``. ``--smoke`` runs one tiny round (CI). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from erlbridge.asyncio import Node  # noqa: E402
from erlbridge.driver import Driver  # noqa: E402
from erlbridge.term import Atom  # noqa: E402
from erlbridge.upgrade import (  # noqa: E402
    CodeChange,
    Load,
    LoadObjectCode,
    PointOfNoReturn,
    Resume,
    Script,
    Suspend,
)


def _conftest() -> Any:
    # The drvt app sources and the plain-erl cluster helper live with the driver tests.
    spec = importlib.util.spec_from_file_location(
        "driver_conftest", REPO / "tests" / "driver" / "conftest.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def build_drvt(conf: Any, root: Path) -> dict[str, Path]:
    import subprocess  # noqa: PLC0415

    out = {}
    for v in ("1", "2", "3"):
        lib = root / f"drvt-{v}"
        (lib / "src").mkdir(parents=True)
        (lib / "ebin").mkdir()
        init = "{state, 0}" if v == "1" else "{state, 0, fresh}"
        for name, text in (("drvt_app", conf.APP_MOD), ("drvt_sup", conf.SUP),
                           ("drvt_srv", conf.SRV), ("drvt_hold", conf.HOLD)):
            (lib / "src" / f"{name}.erl").write_text(text % {"v": v, "init": init})
        (lib / "ebin" / "drvt.app").write_text(conf.APP % {"v": v})
        subprocess.run(["erlc", "-o", str(lib / "ebin"),
                        *sorted(str(p) for p in (lib / "src").glob("*.erl"))], check=True)
        out[v] = lib
    return out


def script(vsn: str, work_ms: int) -> Script:
    extra: Any = Atom(f"v{vsn}")
    if work_ms:
        extra = (Atom("sleep"), work_ms, extra)  # code_change takes work_ms (a migration)
    return Script([
        LoadObjectCode("drvt", vsn, ["drvt_srv"]), PointOfNoReturn(),
        Suspend(["drvt_srv"]), Load("drvt_srv"),
        CodeChange([("drvt_srv", extra)]), Resume(["drvt_srv"]),
    ])


async def one_direct(node: Node, names: list[str], vsn: str, ebin: Path, *,
                     sequential: bool, work_ms: int) -> float:
    t0 = time.perf_counter()
    push = {"drvt": ebin}
    s = script(vsn, work_ms)
    if sequential:
        for n in names:
            r = await Driver(node, [n], node_timeout=120).run_script(s, push_code=push)
            r.raise_for_failures()
    else:
        r = await Driver(node, names, node_timeout=120).run_script(s, push_code=push)
        r.raise_for_failures()
    return time.perf_counter() - t0


async def bench_direct(sizes: list[int], rounds: int,
                       work_ms: int) -> dict[int, dict[str, list[float]]]:
    conf = _conftest()
    results: dict[int, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        drvt = build_drvt(conf, Path(tmp) / "apps")
        for size in sizes:
            cl = conf.start_cluster(Path(tmp), size, [drvt["1"] / "ebin"],
                                    prefix=f"b{size}n")
            try:
                async with Node(f"pyb{secrets.token_hex(2)}@127.0.0.1", cookie=cl.cookie,
                                epmd_port=cl.epmd_port) as node:
                    await cl.connect_all(node, timeout=60)
                    counter = 0

                    def next_vsn() -> str:
                        nonlocal counter
                        counter += 1
                        return "2" if counter % 2 else "3"

                    # warm-up (connections, code paths, erl_eval parse cache)
                    v = next_vsn()
                    await one_direct(node, cl.names, v, drvt[v] / "ebin", sequential=False,
                                     work_ms=work_ms)
                    plan = ["parallel", "sequential"] * rounds
                    random.shuffle(plan)
                    res: dict[str, list[float]] = {"parallel": [], "sequential": []}
                    for mode in plan:
                        v = next_vsn()
                        res[mode].append(await one_direct(
                            node, cl.names, v, drvt[v] / "ebin",
                            sequential=mode == "sequential", work_ms=work_ms))
                    states = [await node.rpc(n, "drvt_srv", "state", [], timeout=10)
                              for n in cl.names]
                    assert all(s[0] == v for s in states), states  # every node really upgraded
                    results[size] = res
            finally:
                cl.stop()
            print(f"direct {size} (work {work_ms} ms): " + ", ".join(
                f"{m} {statistics.median(x):.3f}s" for m, x in res.items()), file=sys.stderr)
    return results


async def bench_release(sizes: list[int]) -> dict[int, dict[str, list[float]]]:
    from erlbridge.testing.cluster import LocalCluster  # noqa: PLC0415

    fixtures = REPO / "_build" / "fixtures"
    tar1, tar2 = fixtures / "fixture-1.0.0.tar.gz", fixtures / "fixture-2.0.0.tar.gz"
    results: dict[int, dict[str, list[float]]] = {}
    for size in sizes:
        res: dict[str, list[float]] = {}
        for mode in random.sample(["parallel", "sequential"], 2):
            with tempfile.TemporaryDirectory() as tmp:
                # sync_barrier=False: the relup's sync_nodes then has an empty node list,
                # else node after node could never pass it (both modes run the same relup).
                cl = LocalCluster(release_tarball=tar1, workdir=Path(tmp), size=size,
                                  name_prefix=f"r{size}{mode[0]}", sync_barrier=False,
                                  erl_flags="+sbwt none +sbwtdcpu none +sbwtdio none")
                cl.start(timeout=300)
                try:
                    async with Node(f"pyr{secrets.token_hex(2)}@127.0.0.1", cookie=cl.cookie,
                                    epmd_port=cl.epmd_port) as node:
                        t0 = time.perf_counter()
                        if mode == "sequential":
                            for n in cl.node_names:
                                (await Driver(node, [n], node_timeout=300).upgrade(tar2)
                                 ).raise_for_failures()
                        else:
                            (await Driver(node, cl.node_names, node_timeout=300).upgrade(tar2)
                             ).raise_for_failures()
                        res[mode] = [time.perf_counter() - t0]
                finally:
                    cl.close()
        results[size] = res
        print(f"release {size}: {res}", file=sys.stderr)
    return results


def table(title: str, results: dict[int, dict[str, list[float]]]) -> str:
    base = statistics.median(results[min(results)]["parallel"])
    lines = [f"**{title}**", "",
             "| nodes | driver (parallel) s | node after node s | parallel / 1-node parallel"
             " | node-after-node / parallel |",
             "|---:|---:|---:|---:|---:|"]
    for size, res in sorted(results.items()):
        p = statistics.median(res["parallel"])
        s = statistics.median(res["sequential"])
        lines.append(f"| {size} | {p:.3f} | {s:.3f} | {p / base:.2f}x | {s / p:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,5,20")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work-ms", default="0,1000",
                    help="node-side work per upgrade (code_change sleeps), one table each")
    ap.add_argument("--release", action="store_true", help="also the release-mode workload")
    ap.add_argument("--release-sizes", default="1,5")
    ap.add_argument("--smoke", action="store_true", help="one tiny round (CI)")
    a = ap.parse_args()
    sizes = [1, 2] if a.smoke else [int(x) for x in a.sizes.split(",")]
    rounds = 1 if a.smoke else a.rounds
    out = []
    for work in [0] if a.smoke else [int(x) for x in a.work_ms.split(",")]:
        direct = asyncio.run(bench_direct(sizes, rounds, work))
        out.append(table(f"direct mode, code_change work {work} ms per node, "
                         f"{rounds} rounds, medians", direct))
    if a.release and not a.smoke:
        rs = [int(x) for x in a.release_sizes.split(",")]
        out.append(table("release mode 1.0.0 -> 2.0.0, one run each",
                         asyncio.run(bench_release(rs))))
    print("\n\n".join(out))


if __name__ == "__main__":
    main()
