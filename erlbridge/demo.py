"""The README demo: a local 3-node cluster upgraded from 1.0.0 to 2.0.0 in one command.

``scripts/demo.sh`` installs what is missing, builds the fixture releases and runs
``python -m erlbridge.demo``. This program (no Docker involved):

1. extracts three target systems of the ``fixture`` release 1.0.0 and starts them with the
   machine's OTP, registered with a private EPMD on a free port
   (:class:`erlbridge.testing.LocalCluster`);
2. joins as a hidden node, discovers the cluster from its first node and bumps a counter
   in each node's ``fixture_server`` (state that must survive the upgrade);
3. prints the readiness report;
4. upgrades all nodes to 2.0.0 at once through ``release_handler`` (upload of the
   tarball, unpack, check_install everywhere, then install + make_permanent); the relup
   holds a ``sync_nodes`` barrier, so no node switches code before all have arrived;
5. prints the per-node report, the code version and server state of every node after
   the upgrade, and where the journal is;
6. stops the cluster (unless ``--keep``: then it prints every variable the CLI and the
   example notebook need, and waits for Ctrl-C or SIGTERM).

The fixture tarballs come from ``--fixtures``, ``$ERLBRIDGE_FIXTURES``, else
:func:`erlbridge.testing.fixture_tarballs` (the checkout's ``_build/fixtures``, built on
first use), so the demo runs from any working directory. SIGTERM stops the cluster as
Ctrl-C does. Exit code 0 when every node was upgraded and checked, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from erlbridge.asyncio import Node
from erlbridge.cli import Output
from erlbridge.display import Table, erlang_text, plain, watch_run
from erlbridge.driver import Driver, discover, read_journal
from erlbridge.exceptions import InvalidState
from erlbridge.term import Atom
from erlbridge.testing.cluster import LocalCluster
from erlbridge.testing.fixture_release import fixture_cluster_options, fixture_tarballs

__all__ = ["main"]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m erlbridge.demo",
        description="Start a local 3-node cluster of fixture 1.0.0 and upgrade it to 2.0.0.",
    )
    env_fixtures = os.environ.get("ERLBRIDGE_FIXTURES")
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=Path(env_fixtures) if env_fixtures else None,
        help="folder with fixture-1.0.0.tar.gz and fixture-2.0.0.tar.gz "
        "(scripts/build-fixtures.sh makes it) [default: $ERLBRIDGE_FIXTURES, else the "
        "checkout's _build/fixtures, built if needed]",
    )
    parser.add_argument("--size", type=int, default=3, help="number of nodes [3]")
    parser.add_argument("--workdir", type=Path, help="where the nodes live [a temp folder]")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the cluster running after the demo and print how to reach it "
        "(stop it with Ctrl-C)",
    )
    return parser.parse_args(argv)


async def _states(node: Node, targets: list[str]) -> dict[str, Any]:
    outcomes = await node.multicall(targets, "fixture", "info", [], timeout=30.0)
    return {t: outcomes[Atom(t)] for t in targets}


def _state_table(title: str, infos: dict[str, Any], states: dict[str, Any]) -> Table:
    rows = []
    for target, outcome in infos.items():
        if not outcome.ok:
            rows.append((target, "error", "", "", "", str(outcome.error)))
            continue
        info = outcome.value
        releases = ", ".join(f"{plain(v)} {plain(s)}" for v, s in info[Atom("releases")])
        state = states.get(target) or {}
        count = state.get(Atom("count"), "")
        tag = state.get(Atom("tag"), "(no such field)")
        rows.append((target, plain(info[Atom("vsn")]), releases, count, plain(tag), ""))
    return Table(
        ("node", "fixture code", "releases", "counter (kept)", "tag (new field)", "error"),
        tuple(rows),
        title,
    )


async def _demo(cluster: LocalCluster, fixtures: Path, journal: Path, out: Output) -> bool:
    seed = cluster.node_names[0]
    async with Node(
        f"erlbridge-demo-{os.getpid()}@127.0.0.1",
        cookie=cluster.cookie,
        epmd_port=cluster.epmd_port,
        hidden=True,
    ) as node:
        # A real cluster is meshed; the freshly started nodes only know of each other.
        others = [n for n in cluster.node_names if n != seed]
        for other in others:
            await node.rpc(seed, "net_adm", "ping", [Atom(other)], timeout=30.0)
        targets = await discover(node, seed)
        out.line(f"discovered from {seed}: {', '.join(targets)}")
        missing = set(cluster.node_names) - set(targets)
        if missing:
            out.warn(f"{', '.join(sorted(missing))} not connected to {seed}; adding them")
            targets += sorted(missing)

        # State that must survive the upgrade: a counter in each fixture_server.
        await node.multicall(targets, "fixture", "bump", [], timeout=30.0)
        bumped = await node.multicall(targets, "fixture", "bump", [], timeout=30.0)
        out.line(
            "fixture_server counters bumped: "
            + ", ".join(f"{t}={erlang_text(bumped[Atom(t)].value)}" for t in targets)
        )

        driver = Driver(node, targets, journal=journal, node_timeout=120.0)
        readiness = await driver.readiness()
        out.line()
        out.line(readiness.to_table())
        if not readiness.ready:
            out.warn("some node is not ready; upgrading anyway shows how failures are reported")

        tarball = fixtures / "fixture-2.0.0.tar.gz"
        out.line()
        out.line(
            f"upgrading {len(targets)} nodes to 2.0.0 from {tarball.name} "
            "(the relup waits at sync_nodes until every node has arrived)"
        )
        with out.progress("upgrade 1.0.0 -> 2.0.0", targets) as progress:
            report = await watch_run(driver.upgrade(tarball), journal=journal, progress=progress)

        out.line()
        out.line(report.to_table())
        infos = await _states(node, targets)
        states = await node.multicall(targets, "fixture", "state", [], timeout=30.0)
        counters = {t: states[Atom(t)].value for t in targets if states[Atom(t)].ok}
        out.line()
        out.table(_state_table("after the upgrade", infos, counters))
        upgraded = all(o.ok and plain(o.value[Atom("vsn")]) == "2.0.0" for o in infos.values())
        out.line()
        out.line(f"journal of every step ({journal.name}), as `erlbridge journal show` reads it:")
        out.line(read_journal(journal).to_table())
        return bool(report.ok and upgraded)


class _Terminated(Exception):
    """SIGTERM arrived: unwind like Ctrl-C, so that every cleanup runs."""


def _stop_on_sigterm() -> None:
    def raise_terminated(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut cleanup
        raise _Terminated

    signal.signal(signal.SIGTERM, raise_terminated)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code (143 after SIGTERM, the cluster stopped)."""
    args = _parse(argv)
    try:
        return _main(args)
    except _Terminated:
        return 128 + signal.SIGTERM


def _main(args: argparse.Namespace) -> int:
    out = Output(json_mode=False)
    _stop_on_sigterm()
    if args.fixtures is None:
        try:
            fixtures = fixture_tarballs()
        except InvalidState as exc:
            out.warn(str(exc))
            return 2
    else:
        fixtures = args.fixtures.resolve()
    for vsn in ("1.0.0", "2.0.0"):
        if not (fixtures / f"fixture-{vsn}.tar.gz").is_file():
            out.warn(f"{fixtures}/fixture-{vsn}.tar.gz is missing: run scripts/build-fixtures.sh")
            return 2
    with contextlib.ExitStack() as stack:
        workdir = (args.workdir.resolve() if args.workdir else None) or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="erlbridge-demo-"))
        )
        cluster = LocalCluster(
            release_tarball=fixtures / "fixture-1.0.0.tar.gz",
            size=args.size,
            workdir=workdir,
            **fixture_cluster_options(fixtures),
        )
        out.line(f"starting {args.size} nodes of fixture 1.0.0 in {workdir} (no Docker) …")
        stack.callback(_stop, cluster, out)  # also when start() fails half-way
        cluster.start()
        out.line(
            f"cluster up: {', '.join(cluster.node_names)} "
            f"(private epmd on port {cluster.epmd_port})"
        )
        ok = asyncio.run(_demo(cluster, fixtures, workdir / "upgrade.journal", out))
        out.line()
        out.line("demo " + ("succeeded: every node runs 2.0.0" if ok else "FAILED"))
        if args.keep:
            _wait_for_interrupt(cluster, workdir, fixtures, out)
        return 0 if ok else 1
    return 1  # pragma: no cover (the with-block always returns)


def _stop(cluster: LocalCluster, out: Output) -> None:
    # Stop first: printing may fail (a closed pipe) and must not keep nodes alive.
    cluster.close()
    with contextlib.suppress(OSError):
        out.line("cluster stopped")


def _wait_for_interrupt(cluster: LocalCluster, workdir: Path, fixtures: Path,
                        out: Output) -> None:
    names = ",".join(cluster.node_names)
    cookie_file = workdir / "cookie"
    cookie_file.write_text(cluster.cookie + "\n", encoding="latin-1")
    cookie_file.chmod(0o400)
    out.line()
    out.line("The cluster keeps running (now at 2.0.0). In another shell (the CLI and the "
             "example notebook read these):")
    out.line(f'  export ERLANG_COOKIE="$(cat {cookie_file})" ERLBRIDGE_COOKIE_FILE={cookie_file}')
    out.line(f"  export ERL_EPMD_PORT={cluster.epmd_port}")
    out.line(f"  export ERLBRIDGE_TARGETS={names} ERLBRIDGE_SEED={cluster.node_names[0]}")
    out.line(f"  export ERLBRIDGE_FIXTURES={fixtures} "
             f"ERLBRIDGE_CLIENT_HOST={cluster.client_host()}")
    out.line("  erlbridge releases --seed $ERLBRIDGE_SEED")
    out.line("  jupyter notebook examples/erlbridge-demo.ipynb")
    out.line("Press Ctrl-C (or send SIGTERM) to stop the cluster.")
    with contextlib.suppress(KeyboardInterrupt, _Terminated):
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
