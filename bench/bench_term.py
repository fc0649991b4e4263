"""Term codec benchmark: erlbridge.term side by side with the PyPI codecs a user would
pick instead, in one process and one run (shuffled rounds, medians).

Usage:
    .venv/bin/python bench/bench_term.py --peers /work/peers [--rounds 7] [--json out.json]
    ERLBRIDGE_PURE_PYTHON=1 .venv/bin/python bench/bench_term.py ...   # without the C part
    .venv/bin/python bench/bench_term.py --smoke      # tiny run, no peers (CI smoke test)

``--peers DIR`` (or env ``ERLBRIDGE_BENCH_PEERS``) is a folder holding one
``pip install --target DIR/<name> <package>`` folder per peer:

    erlang-py        pip install --target DIR/erlang-py erlang-py
    erlpack          pip install --target DIR/erlpack erlpack six      (C extension)
    pure-py-erlpack  pip install --target DIR/pure-py-erlpack pure-py-erlpack
    erldistpy        pip install --target DIR/erldistpy erldistpy

erlpack and pure-py-erlpack share the import name ``erlpack``; each peer is imported
from its own folder and its modules are dropped from ``sys.modules`` afterwards.

Every codec decodes the same wire bytes (what OTP's term_to_binary produces; our
encoder is checked byte for byte against real nodes). Each peer then encodes its own
decoded representation of the payload; a peer whose decode raises, or whose encoding
does not decode (with erlbridge) to the same Erlang term, is reported as failing.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from erlbridge.term import (
    ACCELERATED,
    Atom,
    ErlString,
    FrozenList,
    FrozenMap,
    Pid,
    Reference,
    decode,
    encode,
)

# -- payloads ---------------------------------------------------------------------------

NODE = Atom("app@127.0.0.1")


def _pid(i: int) -> Pid:
    return Pid(NODE, 100 + i, 0, 1795620417)


def _ref(i: int) -> Reference:
    return Reference(NODE, 1795620417, (i, 2845331529, 3517120283))


def payloads() -> dict[str, bytes]:
    """The issue's five payloads, as the wire bytes OTP would send; p4 twice: with
    UTF-8 atoms (OTP 26+, distribution) and with latin-1 atoms (what OTP 25's
    term_to_binary writes by default, common in stored terms)."""
    p1 = (
        Atom("call"),
        Atom("mod"),
        Atom("fun"),
        [1, b"bin", Atom("atom")],
        _pid(1),
    )
    p2 = list(range(1, 10001))
    p3 = bytes(range(256)) * 4096  # 1 MiB
    apps = []
    for i in range(130):
        modules = [Atom(f"app{i}_module_{j}") for j in range(25)]
        apps.append(
            (
                Atom(f"application_{i}"),
                ErlString(f"Description of application number {i} in the release"),
                ErlString(f"{i % 7}.{i % 13}.{i}"),
                [
                    (Atom("modules"), modules),
                    (Atom("registered"), [Atom(f"app{i}_server"), Atom(f"app{i}_sup")]),
                    (Atom("applications"), [Atom("kernel"), Atom("stdlib")]),
                    (Atom("vsn"), ErlString(f"{i}.0.{i % 5}")),
                ],
                {b"key": b"value", b"owner": b"team-" + str(i).encode(), b"tier": b"gold"},
            )
        )
    p4 = (Atom("ok"), apps)
    p5 = (
        Atom("ok"),
        [(_pid(i), _ref(i), i * 1.5, -0.25 / (i + 1), Atom("running"), i) for i in range(200)],
    )
    return {
        "p1 rpc tuple": encode(p1),
        "p2 lists:seq(1,10000)": encode(p2),
        "p3 1 MiB binary": encode(p3),
        "p4 which_applications": encode(p4),
        "p4 latin-1 atoms": b"\x83" + _latin1_atoms(p4),
        "p5 pids/refs/floats": encode(p5),
    }


def _latin1_atoms(term: Any) -> bytes:
    """``term`` encoded (without the 131) as OTP 25's ``term_to_binary`` does by
    default: atoms as latin-1 ATOM_EXT. Covers the containers p4 uses; everything
    else is left to our encoder (its atoms would stay UTF-8)."""
    if type(term) is Atom:
        raw = term.encode("latin-1")
        return b"d" + len(raw).to_bytes(2, "big") + raw
    if type(term) is tuple:
        head = bytes((104, len(term))) if len(term) < 256 else b"i" + len(term).to_bytes(4, "big")
        return head + b"".join(map(_latin1_atoms, term))
    if type(term) is list and term:
        return b"l" + len(term).to_bytes(4, "big") + b"".join(map(_latin1_atoms, term)) + b"j"
    if type(term) is dict:
        items = (_latin1_atoms(k) + _latin1_atoms(v) for k, v in term.items())
        return b"t" + len(term).to_bytes(4, "big") + b"".join(items)
    return encode(term)[1:]


# -- codecs -------------------------------------------------------------------------------


@dataclass
class Codec:
    name: str
    decode: Callable[[bytes], Any]
    encode: Callable[[Any], bytes]
    pure: bool = True
    notes: list[str] = field(default_factory=list)


def _import_isolated(folder: Path, module: str) -> Any:
    """Import ``module`` from ``folder`` only, then forget it (and its submodules and
    helpers like ``six``) so another peer can use the same import name."""
    before = set(sys.modules)
    sys.path.insert(0, str(folder))
    try:
        mod = importlib.import_module(module)
    finally:
        sys.path.remove(str(folder))
        for name in set(sys.modules) - before:
            if name.split(".")[0] in (module.split(".", maxsplit=1)[0], "six"):
                del sys.modules[name]
    return mod


def load_peers(root: Path | None) -> tuple[list[Codec], list[str]]:
    codecs: list[Codec] = []
    missing: list[str] = []
    if root is None:
        return codecs, ["(no --peers folder given)"]

    def attempt(name: str, make: Callable[[Path], Codec]) -> None:
        folder = root / name
        if not folder.is_dir():
            missing.append(f"{name}: not installed in {folder}")
            return
        try:
            codecs.append(make(folder))
        except Exception as exc:  # a peer that cannot even load is reported
            missing.append(f"{name}: failed to import ({exc!r})")

    def erlang_py(folder: Path) -> Codec:
        mod = _import_isolated(folder, "erlang")
        return Codec("erlang-py", mod.binary_to_term, mod.term_to_binary)

    def erlpack_c(folder: Path) -> Codec:
        mod = _import_isolated(folder, "erlpack")
        if not mod._packer.__file__.endswith(".so"):
            raise RuntimeError("this erlpack is not the C extension")
        return Codec("erlpack (C)", mod.unpack, mod.pack, pure=False)

    def erlpack_pure(folder: Path) -> Codec:
        mod = _import_isolated(folder, "erlpack")
        return Codec("pure-py-erlpack", mod.unpack, mod.pack)

    def erldistpy(folder: Path) -> Codec:
        mod = _import_isolated(folder, "erldistpy.etf")
        return Codec("erldistpy.etf", mod.decode, mod.encode)

    attempt("erlang-py", erlang_py)
    attempt("erlpack", erlpack_c)
    attempt("pure-py-erlpack", erlpack_pure)
    attempt("erldistpy", erldistpy)
    return codecs, missing


# -- measuring ----------------------------------------------------------------------------


def _canon(term: Any) -> Any:
    """Erlang-level identity for the correctness check (maps unordered, strings as
    code point lists)."""
    if isinstance(term, dict | FrozenMap):
        return ("map", sorted((repr(_canon(k)), repr(_canon(v))) for k, v in term.items()))
    if isinstance(term, tuple) and not isinstance(term, FrozenList):
        return ("tuple", [_canon(x) for x in term])
    if isinstance(term, list | ErlString | FrozenList):
        return ("list", [_canon(x) for x in term])
    if isinstance(term, float):
        return ("float", term.hex())
    return (type(term).__name__, term)


# CPU time of this process, not wall time: the benchmark machine is shared (other
# jobs on 2 cores), and CPU time is far less disturbed by them. The codecs are all
# single-threaded, so CPU time is the time they cost.
_clock = time.process_time


def _time(fn: Callable[[], Any], budget_s: float) -> float:
    """CPU seconds per call: the best of 3 batches sized to take about budget_s / 3."""
    fn()
    start = _clock()
    for _ in range(3):
        fn()
    once = max((_clock() - start) / 3, 1e-7)
    number = max(1, int(budget_s / 3 / once))
    best = float("inf")
    for _ in range(3):
        gc.collect()
        start = _clock()
        for _ in range(number):
            fn()
        best = min(best, (_clock() - start) / number)
    return best


@dataclass
class Cell:
    times: list[float] = field(default_factory=list)
    failure: str | None = None


def run(rounds: int, budget_s: float, root: Path | None) -> dict[str, Any]:
    ours = Codec("erlbridge", decode, encode)
    peers, missing = load_peers(root)
    codecs = [ours, *peers]
    wires = payloads()
    results: dict[tuple[str, str, str], Cell] = {}
    inputs: dict[tuple[str, str], Any] = {}

    # Correctness first: a peer must decode the wire bytes and re-encode its own
    # representation into the same Erlang term.
    for payload, wire in wires.items():
        expected = _canon(decode(wire))
        for codec in codecs:
            dec = results.setdefault((codec.name, payload, "decode"), Cell())
            enc = results.setdefault((codec.name, payload, "encode"), Cell())
            try:
                value = codec.decode(wire)
            except Exception as exc:
                dec.failure = enc.failure = f"decode raised {type(exc).__name__}"
                continue
            inputs[(codec.name, payload)] = value
            try:
                out = codec.encode(value)
            except Exception as exc:
                enc.failure = f"encode raised {type(exc).__name__}"
                continue
            try:
                same = _canon(decode(bytes(out))) == expected
            except Exception:
                same = False
            if not same:
                enc.failure = "encodes a different term"

    copy_cell = Cell()
    p3 = wires["p3 1 MiB binary"]
    order: list[tuple[Codec | None, str, str]] = [
        (c, p, op) for c in codecs for p in wires for op in ("decode", "encode")
    ]
    order.append((None, "p3 1 MiB binary", "copy"))  # one plain copy of the payload
    for _ in range(rounds):
        random.shuffle(order)
        for who, payload, op in order:
            if who is None:
                copy_cell.times.append(
                    _time(partial(bytes.__getitem__, p3, slice(6, None)), budget_s)
                )
                continue
            cell = results[(who.name, payload, op)]
            if cell.failure is not None:
                continue
            if op == "decode":
                cell.times.append(_time(partial(who.decode, wires[payload]), budget_s))
            else:
                cell.times.append(_time(partial(who.encode, inputs[(who.name, payload)]), budget_s))

    return {
        "accelerated": ACCELERATED,
        "codecs": [c.name for c in codecs],
        "pure": {c.name: c.pure for c in codecs},
        "missing": missing,
        "sizes": {p: len(w) for p, w in wires.items()},
        "cells": {
            f"{c}|{p}|{op}": {
                "median_s": statistics.median(cell.times) if cell.times else None,
                "failure": cell.failure,
            }
            for (c, p, op), cell in results.items()
        },
        "copy_1mib_s": statistics.median(copy_cell.times),
        "rounds": rounds,
    }


# -- report ---------------------------------------------------------------------------------


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms"


def report(res: dict[str, Any]) -> str:
    codecs = res["codecs"]
    peers = [c for c in codecs if c != "erlbridge"]
    lines = []
    for op in ("decode", "encode"):
        lines.append(f"\n### {op}\n")
        header = "| payload (bytes) | erlbridge | MB/s | " + " | ".join(peers) + " |"
        lines.append(header)
        lines.append("|" + "---|" * (3 + len(peers)))
        for payload, size in res["sizes"].items():
            ours = res["cells"][f"erlbridge|{payload}|{op}"]["median_s"]
            row = [f"{payload} ({size})", _fmt_time(ours), f"{size / ours / 1e6:.0f}"]
            for peer in peers:
                cell = res["cells"][f"{peer}|{payload}|{op}"]
                if cell["failure"]:
                    row.append(f"FAIL: {cell['failure']}")
                else:
                    row.append(
                        f"{_fmt_time(cell['median_s'])} = **{cell['median_s'] / ours:.2f}x**"
                    )
            lines.append("| " + " | ".join(row) + " |")
    lines.append(
        "\nA peer cell shows its time and the ratio peer time / erlbridge time "
        "(> 1 means erlbridge is faster)."
    )
    lines.append("\n### targets\n")
    lines.append("| target | payload | measured | met |")
    lines.append("|---|---|---|---|")
    pure = [p for p in peers if res["pure"][p]]
    for op in ("decode", "encode"):
        for payload in res["sizes"]:
            ours = res["cells"][f"erlbridge|{payload}|{op}"]["median_s"]
            times = [
                (res["cells"][f"{p}|{payload}|{op}"]["median_s"], p)
                for p in pure
                if not res["cells"][f"{p}|{payload}|{op}"]["failure"]
            ]
            if not times:
                lines.append(
                    f"| {op} ≥ 1.5x fastest pure peer | {payload} | no pure peer passes | n/a |"
                )
                continue
            best, name = min(times)
            ratio = best / ours
            lines.append(
                f"| {op} ≥ 1.5x fastest pure peer | {payload} | {ratio:.2f}x vs {name} | "
                f"{'yes' if ratio >= 1.5 else '**no**'} |"
            )
    # Against erlpack's C extension (issue 15): decode every payload, encode p2/p4.
    c_targets = [("decode", payload, 1.3) for payload in res["sizes"]]
    c_targets += [
        ("encode", payload, 1.0)
        for payload in ("p2 lists:seq(1,10000)", "p4 which_applications", "p4 latin-1 atoms")
    ]
    for op, payload, need in c_targets:
        cell = res["cells"].get(f"erlpack (C)|{payload}|{op}")
        ours = res["cells"][f"erlbridge|{payload}|{op}"]["median_s"]
        target = f"{op} ≥ {need:.1f}x erlpack (C)"
        if cell is None or cell["failure"]:
            why = cell["failure"] if cell else "not measured"
            lines.append(f"| {target} | {payload} | erlpack: {why} | n/a |")
        else:
            ratio = cell["median_s"] / ours
            lines.append(
                f"| {target} | {payload} | {ratio:.2f}x | {'yes' if ratio >= need else '**no**'} |"
            )
    p3 = res["cells"]["erlbridge|p3 1 MiB binary|decode"]["median_s"]
    copy = res["copy_1mib_s"]
    lines.append(
        f"| decode ≤ one copy of the payload | p3 1 MiB binary | {_fmt_time(p3)} vs copy "
        f"{_fmt_time(copy)} ({copy / p3:.2f}x) | {'yes' if p3 <= copy * 1.05 else '**no**'} |"
    )
    if res["missing"]:
        lines.append("\nPeers not measured: " + "; ".join(res["missing"]))
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.release()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", type=Path, default=os.environ.get("ERLBRIDGE_BENCH_PEERS"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--budget", type=float, default=0.15, help="seconds per measurement")
    parser.add_argument("--json", type=Path, help="also write raw results here")
    parser.add_argument("--smoke", action="store_true", help="one quick round, no peers")
    args = parser.parse_args(argv)
    if args.smoke:
        res = run(1, 0.005, None)
    else:
        res = run(args.rounds, args.budget, Path(args.peers) if args.peers else None)
    print(f"Machine: {machine()}")
    print(
        "erlbridge codec: "
        + (
            "compiled fast paths (erlbridge.term._speedups)"
            if res["accelerated"]
            else "pure Python (ERLBRIDGE_PURE_PYTHON=1, or the extension is not built)"
        )
    )
    print(
        f"Rounds: {res['rounds']} (shuffled), median of per-round best-of-3 batches, "
        "process CPU time"
    )
    print(report(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
