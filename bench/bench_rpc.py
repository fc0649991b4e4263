"""rpc throughput and latency, side by side against one local OTP node.

Contenders, all calling the same target node in the same run:

* ``erlang``    Erlang's own ``rpc:call`` from another Erlang node (the physical reference);
  ``erlang-rex`` the same calls as ``gen_server:call({rex, N}, {call, M, F, A, user})``, the
  route erlbridge takes (``rpc:call`` itself uses erpc's spawn_request since OTP 23)
* ``erlbridge`` this library's asyncio Node; ``erlbridge-uvloop`` the same on uvloop's loop
  (if installed); ``erlbridge-sync`` the blocking facade (a loop in a daemon thread),
  ``erlbridge-sync-uvloop`` the same with uvloop's loop in that thread
* ``erldistpy`` the PyPI client (install with ``pip install --target /work/peers/erldistpy
  erldistpy``; pass ``--erldistpy-path``); it is sync with one call in flight per
  connection, so its 16 callers are 16 threads with a connection each
* ``erl_call``  erl_interface's command-line tool (one OS process per call)

Calls: ``erlang:node()`` (small reply) and ``lists:seq(1, 10000)`` (a 49 KB reply).
Sequential: calls/s, median and p99 latency; concurrent: calls/s with 16 callers.
Several rounds in shuffled order (the machine is noisy); medians across rounds are reported,
with ratios to Erlang. ``--write`` replaces the rpc section of BENCHMARKS.md.

    .venv/bin/python bench/bench_rpc.py --rounds 3 --write
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erlbridge._portal import Portal
from erlbridge.asyncio import Node
from erlbridge.sync import Node as SyncNode

CALLS = {
    "node": ("erlang", "node", []),
    "seq10000": ("lists", "seq", [1, 10000]),
}
CONCURRENCY = 16
ROOT = Path(__file__).resolve().parent.parent
SECTION_START = "<!-- bench_rpc:start -->"
SECTION_END = "<!-- bench_rpc:end -->"

ERLANG_REF = r"""
-module(eb_bench_ref).
-export([run/0]).

run() ->
    Target = list_to_atom(os:getenv("EB_TARGET")),
    N = list_to_integer(os:getenv("EB_N")),
    C = list_to_integer(os:getenv("EB_C")),
    true = net_kernel:connect_node(Target),
    Calls = [{node, erlang, node, []}, {seq10000, lists, seq, [1, 10000]}],
    Rpc = fun(M, F, A) -> rpc:call(Target, M, F, A) end,
    %% the same call through rex's gen_server interface, which is what erlbridge uses
    Rex = fun(M, F, A) -> gen_server:call({rex, Target}, {call, M, F, A, user}, infinity) end,
    [begin
         Call(M, F, A),
         seq(Kind, Name, Call, M, F, A, N),
         conc(Kind, Name, Call, M, F, A, N, C)
     end || {Name, M, F, A} <- Calls, {Kind, Call} <- [{rpc, Rpc}, {rex, Rex}]],
    halt().

seq(Kind, Name, Call, M, F, A, N) ->
    T0 = erlang:monotonic_time(nanosecond),
    Lats = [begin
                S = erlang:monotonic_time(nanosecond),
                _ = Call(M, F, A),
                erlang:monotonic_time(nanosecond) - S
            end || _ <- lists:seq(1, N)],
    Total = erlang:monotonic_time(nanosecond) - T0,
    Text = string:join([integer_to_list(L) || L <- Lats], ","),
    io:format("RESULT seq ~s ~s ~p ~s~n", [Kind, Name, Total, Text]).

conc(Kind, Name, Call, M, F, A, N, C) ->
    Per = N div C,
    Self = self(),
    T0 = erlang:monotonic_time(nanosecond),
    Work = fun() ->
                   [Call(M, F, A) || _ <- lists:seq(1, Per)],
                   Self ! {done, self()}
           end,
    Pids = [spawn_link(Work) || _ <- lists:seq(1, C)],
    [receive {done, P} -> ok end || P <- Pids],
    Total = erlang:monotonic_time(nanosecond) - T0,
    io:format("RESULT conc ~s ~s ~p ~p~n", [Kind, Name, Total, Per * C]).
"""


@dataclass
class Sample:
    seq_per_s: float
    median_us: float
    p99_us: float
    conc_per_s: float | None


@dataclass
class Results:
    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)

    def add(self, impl: str, call: str, sample: Sample) -> None:
        self.samples.setdefault((impl, call), []).append(sample)


def summarize(lats_s: list[float], total_s: float) -> tuple[float, float, float]:
    lats = sorted(lats_s)
    p99 = lats[min(len(lats) - 1, int(len(lats) * 0.99))]
    return len(lats) / total_s, statistics.median(lats) * 1e6, p99 * 1e6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A private EPMD, a cookie in a private HOME, and the target node ``bt@127.0.0.1``."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="eb-bench-"))
        self.cookie = "bench" + secrets.token_hex(6)
        home = self.dir / "home"
        home.mkdir()
        (home / ".erlang.cookie").write_text(self.cookie)
        (home / ".erlang.cookie").chmod(0o400)
        self.epmd_port = free_port()
        self.env = {**os.environ, "HOME": str(home), "ERL_EPMD_PORT": str(self.epmd_port)}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.procs.append(subprocess.Popen(["epmd", "-port", str(self.epmd_port)], env=self.env))
        time.sleep(0.3)
        self.target = "bt@127.0.0.1"
        self.procs.append(
            subprocess.Popen(
                ["erl", "-noshell", "-noinput", "-name", self.target],
                env=self.env,
                stdout=subprocess.DEVNULL,
            )
        )
        self.target_port = self._wait_port("bt")

    def _wait_port(self, alive: str) -> int:
        for _ in range(200):
            out = subprocess.run(
                ["epmd", "-port", str(self.epmd_port), "-names"],
                env=self.env,
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            for line in out.splitlines():
                if line.startswith(f"name {alive} at port "):
                    return int(line.split()[-1])
            time.sleep(0.05)
        raise RuntimeError("target node did not register")

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def bench_erlang(cluster: Cluster, n: int) -> dict[str, dict[str, Sample]]:
    """Erlang's rpc:call and gen_server:call to rex, from another Erlang node."""
    src = cluster.dir / "eb_bench_ref.erl"
    src.write_text(ERLANG_REF)
    subprocess.run(["erlc", "-o", str(cluster.dir), str(src)], check=True, env=cluster.env)
    env = {**cluster.env, "EB_TARGET": cluster.target, "EB_N": str(n), "EB_C": str(CONCURRENCY)}
    out = subprocess.run(
        [
            "erl",
            "-noshell",
            "-noinput",
            "-name",
            f"bref{secrets.token_hex(3)}@127.0.0.1",
            "-pa",
            str(cluster.dir),
            "-run",
            "eb_bench_ref",
            "run",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    seq: dict[tuple[str, str], tuple[float, float, float]] = {}
    conc: dict[tuple[str, str], float] = {}
    for line in out.splitlines():
        parts = line.split()
        if parts[:2] == ["RESULT", "seq"]:
            lats = [int(x) / 1e9 for x in parts[5].split(",")]
            seq[parts[2], parts[3]] = summarize(lats, int(parts[4]) / 1e9)
        elif parts[:2] == ["RESULT", "conc"]:
            conc[parts[2], parts[3]] = int(parts[5]) / (int(parts[4]) / 1e9)
    return {
        impl: {name: Sample(*seq[kind, name], conc[kind, name]) for name in CALLS}
        for impl, kind in (("erlang", "rpc"), ("erlang-rex", "rex"))
    }


async def _erlbridge_async(cluster: Cluster, n: int) -> dict[str, Sample]:
    results: dict[str, Sample] = {}
    async with Node(
        f"pyb{secrets.token_hex(3)}@127.0.0.1", cookie=cluster.cookie, epmd_port=cluster.epmd_port
    ) as node:
        for name, (m, f, a) in CALLS.items():
            await node.rpc(cluster.target, m, f, a)
            lats = []
            t0 = time.perf_counter()
            for _ in range(n):
                s = time.perf_counter()
                await node.rpc(cluster.target, m, f, a)
                lats.append(time.perf_counter() - s)
            seq = summarize(lats, time.perf_counter() - t0)
            per = n // CONCURRENCY

            async def worker(m: str = m, f: str = f, a: list[Any] = a, per: int = per) -> None:
                for _ in range(per):
                    await node.rpc(cluster.target, m, f, a)

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            conc = per * CONCURRENCY / (time.perf_counter() - t0)
            results[name] = Sample(*seq, conc)
    return results


def bench_erlbridge(cluster: Cluster, n: int) -> dict[str, Sample]:
    return asyncio.run(_erlbridge_async(cluster, n))


def bench_erlbridge_uvloop(cluster: Cluster, n: int) -> dict[str, Sample]:
    """The same asyncio Node on uvloop's event loop (``pip install uvloop``)."""
    import uvloop  # noqa: PLC0415

    return uvloop.run(_erlbridge_async(cluster, n))


def _threads(fn: Callable[[], None], count: int) -> float:
    threads = [threading.Thread(target=fn) for _ in range(count)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def bench_erlbridge_sync(
    cluster: Cluster, n: int, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
) -> dict[str, Sample]:
    """The blocking Node; ``loop_factory`` makes its portal's loop (uvloop's, say)."""
    results: dict[str, Sample] = {}
    with contextlib.ExitStack() as stack:
        extra: dict[str, Any] = {}
        if loop_factory is not None:
            extra["portal"] = stack.enter_context(
                Portal("bench-sync", loop_factory=loop_factory)  # type: ignore[call-arg]
            )
        node = stack.enter_context(
            SyncNode(
                f"pys{secrets.token_hex(3)}@127.0.0.1",
                cookie=cluster.cookie,
                epmd_port=cluster.epmd_port,
                **extra,
            )
        )
        for name, (m, f, a) in CALLS.items():
            node.rpc(cluster.target, m, f, a)
            lats = []
            t0 = time.perf_counter()
            for _ in range(n):
                s = time.perf_counter()
                node.rpc(cluster.target, m, f, a)
                lats.append(time.perf_counter() - s)
            seq = summarize(lats, time.perf_counter() - t0)
            per = n // CONCURRENCY

            def worker(m: str = m, f: str = f, a: list[Any] = a, per: int = per) -> None:
                for _ in range(per):
                    node.rpc(cluster.target, m, f, a)

            conc = per * CONCURRENCY / _threads(worker, CONCURRENCY)
            results[name] = Sample(*seq, conc)
    return results


def bench_erldistpy(cluster: Cluster, n: int, path: str) -> dict[str, Sample]:
    sys.path.insert(0, path)
    import functools  # noqa: PLC0415

    import erldistpy  # noqa: PLC0415
    import erldistpy.node as ednode  # noqa: PLC0415

    # erldistpy always asks EPMD on 4369: point it at the private EPMD
    ednode.lookup = functools.partial(erldistpy.lookup, port=cluster.epmd_port)
    EA = erldistpy.Atom
    user = EA("user")

    def connect() -> Any:
        return erldistpy.Node(
            our_name=f"pye{secrets.token_hex(3)}@127.0.0.1",
            peer_name="bt",
            cookie=cluster.cookie,
            peer_host="127.0.0.1",
        )

    results: dict[str, Sample] = {}
    for name, (m, f, a) in CALLS.items():
        request = (EA("call"), EA(m), EA(f), a, user)
        with connect() as node:
            node.call("rex", request)
            lats = []
            t0 = time.perf_counter()
            for _ in range(n):
                s = time.perf_counter()
                node.call("rex", request)
                lats.append(time.perf_counter() - s)
            seq = summarize(lats, time.perf_counter() - t0)
        per = n // CONCURRENCY
        nodes = [connect() for _ in range(CONCURRENCY)]
        it = iter(nodes)
        lock = threading.Lock()

        def worker(request: Any = request, per: int = per, lock: Any = lock, it: Any = it) -> None:
            with lock:
                node = next(it)
            for _ in range(per):
                node.call("rex", request)

        conc = per * CONCURRENCY / _threads(worker, CONCURRENCY)
        for node in nodes:
            node.close()
        results[name] = Sample(*seq, conc)
    return results


def bench_erl_call(cluster: Cluster, n: int) -> dict[str, Sample]:
    exe = shutil.which("erl_call")
    if exe is None:
        raise RuntimeError("erl_call not found")
    results: dict[str, Sample] = {}
    for name, (m, f, a) in CALLS.items():
        argv = [
            exe,
            "-name",
            cluster.target,
            "-c",
            cluster.cookie,
            "-address",
            f"127.0.0.1:{cluster.target_port}",
            "-a",
            f"{m} {f} {a}",
        ]
        lats = []
        t0 = time.perf_counter()
        for _ in range(n):
            s = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True, env=cluster.env)
            lats.append(time.perf_counter() - s)
        seq = summarize(lats, time.perf_counter() - t0)
        per = max(1, n // CONCURRENCY)

        def worker(argv: list[str] = argv, per: int = per) -> None:
            for _ in range(per):
                subprocess.run(argv, capture_output=True, check=True, env=cluster.env)

        conc = per * CONCURRENCY / _threads(worker, CONCURRENCY)
        results[name] = Sample(*seq, conc)
    return results


def fmt(x: float | None, digits: int = 0) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def report(results: Results, args: argparse.Namespace) -> str:
    def med(impl: str, call: str, attr: str) -> float | None:
        samples = results.samples.get((impl, call))
        if not samples:
            return None
        values = [getattr(s, attr) for s in samples if getattr(s, attr) is not None]
        return statistics.median(values) if values else None

    impls = [
        i
        for i in (
            "erlang",
            "erlang-rex",
            "erlbridge",
            "erlbridge-uvloop",
            "erlbridge-sync",
            "erlbridge-sync-uvloop",
            "erldistpy",
            "erl_call",
        )
        if any(k[0] == i for k in results.samples)
    ]
    impls += sorted({k[0] for k in results.samples if "[" in k[0]})
    lines = [
        f"Command: `{args.command}` — {args.rounds} round(s) in shuffled order, medians across "
        f"rounds; {args.calls} sequential calls and {args.calls} calls over {CONCURRENCY} "
        f"concurrent callers per round (erl_call: {args.erl_call_calls}). Target: one local "
        f"OTP {erlang_version()} node over loopback; Python {sys.version.split()[0]}; "
        f"{os.cpu_count()} CPUs. Ratios are to Erlang's rpc:call in the same run; the median "
        "column compares median latencies, which a loaded machine disturbs less than totals.",
        "",
        "| call | client | seq calls/s | vs Erlang | median µs | vs Erlang (median) | p99 µs "
        "| 16 callers calls/s | vs Erlang |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for call in CALLS:
        ref_seq = med("erlang", call, "seq_per_s")
        ref_med = med("erlang", call, "median_us")
        ref_conc = med("erlang", call, "conc_per_s")
        for impl in impls:
            seq = med(impl, call, "seq_per_s")
            median = med(impl, call, "median_us")
            conc = med(impl, call, "conc_per_s")
            lines.append(
                f"| `{call}` | {impl} | {fmt(seq)} | "
                f"{fmt(seq / ref_seq if seq and ref_seq else None, 2)} | {fmt(median)} | "
                f"{fmt(ref_med / median if median and ref_med else None, 2)} | "
                f"{fmt(med(impl, call, 'p99_us'))} | {fmt(conc)} | "
                f"{fmt(conc / ref_conc if conc and ref_conc else None, 2)} |"
            )
    return "\n".join(lines)


def erlang_version() -> str:
    out = subprocess.run(
        ["erl", "-noshell", "-eval", 'io:format("~s", [erlang:system_info(otp_release)]), halt().'],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


def write_section(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    body = f"{SECTION_START}\n{text}\n{SECTION_END}"
    if path.exists():
        doc = path.read_text()
        if SECTION_START in doc and SECTION_END in doc:
            head, rest = doc.split(SECTION_START, 1)
            _, tail = rest.split(SECTION_END, 1)
            path.write_text(head + body + tail)
            return
    else:
        doc = "# Benchmarks\n"
    path.write_text(doc.rstrip("\n") + "\n\n## Distribution node / rpc\n\n" + body + "\n")


@dataclass
class Remote:
    """The cluster as a worker process sees it."""

    target: str
    cookie: str
    epmd_port: int


def worker(kind: str, cluster: Remote, n: int) -> None:
    """``--worker``: measure this interpreter's erlbridge (whatever PYTHONPATH gives) and
    print the samples as JSON, for ``--compare``."""
    bench = bench_erlbridge if kind == "async" else bench_erlbridge_sync
    measured = bench(cluster, n)  # type: ignore[arg-type]
    print(json.dumps({call: vars(sample) for call, sample in measured.items()}))


def compared(cluster: Cluster, n: int, kind: str, path: str) -> dict[str, Sample]:
    """Run one contender in a worker process whose ``erlbridge`` comes from ``path``."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            kind,
            "--calls",
            str(n),
            "--worker-cluster",
            f"{cluster.target},{cluster.cookie},{cluster.epmd_port}",
        ],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return {call: Sample(**values) for call, values in data.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--erl-call-calls", type=int, default=32)
    parser.add_argument("--erldistpy-path", default="/work/peers/erldistpy")
    parser.add_argument("--skip", action="append", default=[], help="contender to leave out")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also measure the erlbridge found at PATH (another checkout) as NAME, in the "
        "same rounds: paired before/after figures",
    )
    parser.add_argument("--worker", choices=["async", "sync"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-cluster", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        target, cookie, port = args.worker_cluster.split(",")
        worker(args.worker, Remote(target, cookie, int(port)), args.calls)
        return
    args.command = "python bench/bench_rpc.py " + " ".join(sys.argv[1:])
    contenders: dict[str, Callable[[Cluster], Any]] = {
        "erlang": lambda c: bench_erlang(c, args.calls),  # also gives "erlang-rex"
        "erlbridge": lambda c: bench_erlbridge(c, args.calls),
        "erlbridge-uvloop": lambda c: bench_erlbridge_uvloop(c, args.calls),
        "erlbridge-sync": lambda c: bench_erlbridge_sync(c, args.calls),
        "erlbridge-sync-uvloop": lambda c: bench_erlbridge_sync(
            c, args.calls, importlib.import_module("uvloop").new_event_loop
        ),
        "erldistpy": lambda c: bench_erldistpy(c, args.calls, args.erldistpy_path),
        "erl_call": lambda c: bench_erl_call(c, args.erl_call_calls),
    }
    for spec in args.compare:
        label, path = spec.split("=", 1)
        for kind, impl in (("async", "erlbridge"), ("sync", "erlbridge-sync")):
            contenders[f"{impl}[{label}]"] = functools.partial(
                lambda c, k, p: compared(c, args.calls, k, p), k=kind, p=path
            )
    if not Path(args.erldistpy_path, "erldistpy").exists():
        print(f"erldistpy not found under {args.erldistpy_path}: skipped", file=sys.stderr)
        args.skip.append("erldistpy")
    try:
        import uvloop  # noqa: F401, PLC0415
    except ImportError:
        print("uvloop not installed: the uvloop contenders are skipped", file=sys.stderr)
        args.skip += ["erlbridge-uvloop", "erlbridge-sync-uvloop"]
    for name in args.skip:
        contenders.pop(name, None)
    results = Results()
    cluster = Cluster()
    try:
        for r in range(args.rounds):
            order = list(contenders)
            random.shuffle(order)
            for name in order:
                print(f"round {r + 1}: {name} ...", file=sys.stderr, flush=True)
                measured = contenders[name](cluster)
                if name == "erlang":
                    for impl, samples in measured.items():
                        for call, sample in samples.items():
                            results.add(impl, call, sample)
                else:
                    for call, sample in measured.items():
                        results.add(name, call, sample)
    finally:
        cluster.close()
    text = report(results, args)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
