"""Where a blocking rpc's time goes: CPU per call by thread, context switches, wall time.

    .venv/bin/python bench/profile_rpc.py [--calls 6000] [--threads 1 16]

For each thread count, ``erlang:node()`` rpcs through the blocking API against one local
OTP node (bench_rpc.py's cluster), measured with ``getrusage`` (the process) and
``time.thread_time`` (each caller thread; the rest is the loop thread's and the kernel's
on its behalf). Prints one line per run; BENCHMARKS.md quotes it where a target is
missed. The same run with the node's ``reply_spin=0`` shows what the spin changes.
"""

from __future__ import annotations

import argparse
import resource
import secrets
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_rpc  # noqa: E402

from erlbridge.sync import Node  # noqa: E402


def run(cluster: bench_rpc.Cluster, threads: int, calls: int, spin: float) -> str:
    with Node(
        f"prof{secrets.token_hex(3)}@127.0.0.1",
        cookie=cluster.cookie,
        epmd_port=cluster.epmd_port,
        reply_spin=spin,
    ) as node:
        for _ in range(300):
            node.rpc(cluster.target, "erlang", "node", [])
        per = calls // threads
        caller_cpu: list[float] = []

        def worker() -> None:
            start = time.thread_time()
            for _ in range(per):
                node.rpc(cluster.target, "erlang", "node", [])
            caller_cpu.append(time.thread_time() - start)

        workers = [threading.Thread(target=worker) for _ in range(threads)]
        before = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF)
    n = per * threads
    user = (after.ru_utime - before.ru_utime) / n * 1e6
    system = (after.ru_stime - before.ru_stime) / n * 1e6
    callers = sum(caller_cpu) / n * 1e6
    voluntary = (after.ru_nvcsw - before.ru_nvcsw) / n
    involuntary = (after.ru_nivcsw - before.ru_nivcsw) / n
    return (
        f"threads={threads:<3} reply_spin={spin * 1e6:>4.0f}µs  {n / wall:>8,.0f} calls/s  "
        f"wall {wall / n * 1e6:6.1f} µs/call  CPU {user + system:6.1f} µs/call "
        f"(user {user:5.1f}, sys {system:5.1f}; caller threads {callers:5.1f}, "
        f"loop thread and the rest {user + system - callers:5.1f})  "
        f"context switches/call: {voluntary:4.2f} voluntary, {involuntary:4.2f} forced"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    cluster = bench_rpc.Cluster()
    try:
        for threads in args.threads:
            for spin in (0.0002, 0.0):
                print(run(cluster, threads, args.calls, spin), flush=True)
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
