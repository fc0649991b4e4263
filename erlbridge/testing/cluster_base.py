"""The backend-independent part of a test cluster: :class:`Cluster` (the API every
backend offers), :class:`ClusterNode`, :class:`NodeSupervisor` (heart's stand-in).

See :mod:`erlbridge.testing.cluster` for the overview; the backends are
:mod:`.local_cluster` and :mod:`.docker_cluster`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from erlbridge.exceptions import NodeDown, Timeout
from erlbridge.testing import cleanup
from erlbridge.testing.erlang import CookieHome, ErlCall, ObserverNode, new_cookie
from erlbridge.testing.release import READY_EXPR

__all__ = ["Cluster", "ClusterNode", "NodeRef", "NodeSupervisor", "free_port"]

# The name these records had before the module was split: logging configs name it.
logger = logging.getLogger("erlbridge.testing.cluster")


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One node of a cluster: ``name`` is the full node name, ``address`` its IP."""

    index: int
    name: str
    address: str

    def __str__(self) -> str:
        return self.name


NodeRef = ClusterNode | str | int
"""A node given as :class:`ClusterNode`, node name, or index (0-based)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Cluster(ABC):
    """N release nodes sharing a cookie; a context manager.

    Options (keyword-only): ``size`` nodes; ``cookie`` (default: random);
    ``net_ticktime`` seconds (None: OTP's 60) -- lower it to see partitions quickly;
    ``erl_flags`` extra emulator flags (``ERL_FLAGS``); ``env`` extra environment
    variables of every node; ``nodes_env`` a variable set to all node names
    (comma-separated) unless ``sync_barrier`` is False; ``timeout_factor`` scales every
    wait.
    """

    backend: ClassVar[str]

    def __init__(
        self,
        *,
        size: int,
        workdir: Path,
        cookie: str | None = None,
        net_ticktime: int | None = None,
        erl_flags: str = "",
        sync_barrier: bool = True,
        env: dict[str, str] | None = None,
        nodes_env: str | None = None,
        timeout_factor: float = 1.0,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.size = size
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.cookie = cookie or new_cookie()
        self.net_ticktime = net_ticktime
        self.erl_flags = erl_flags
        self.sync_barrier = sync_barrier
        self.env = dict(env or {})
        self.nodes_env = nodes_env
        self.timeout_factor = timeout_factor
        self.home = CookieHome(workdir / "client-home", self.cookie)
        self.nodes: tuple[ClusterNode, ...] = ()
        self.epmd_port: int | None = None
        self.otp_release: str | None = None
        self.journals: list[Path] = []
        """Journals of the upgrades/downgrades run through :meth:`upgrade`."""
        self._erl_call: ErlCall | None = None
        self._observers: list[ObserverNode] = []
        self._closed = False

    # -- identity --------------------------------------------------------------------

    @property
    def node_names(self) -> list[str]:
        """Full node names, in index order."""
        return [n.name for n in self.nodes]

    def node(self, ref: NodeRef) -> ClusterNode:
        """The :class:`ClusterNode` for ``ref``; raises ``LookupError``."""
        if isinstance(ref, ClusterNode):
            return ref
        if isinstance(ref, int):
            return self.nodes[ref]
        for n in self.nodes:
            if n.name == ref:
                return n
        raise LookupError(f"no node {ref!r} in this cluster")

    def _scaled(self, timeout: float) -> float:
        return timeout * self.timeout_factor

    def node_env(self, node: ClusterNode) -> dict[str, str]:
        """The environment variables a node is started with (no cookie among them)."""
        flags = self.erl_flags
        if self.net_ticktime is not None:
            flags = f"-kernel net_ticktime {self.net_ticktime} {flags}".strip()
        env = {**self.env, "ERL_FLAGS": flags}
        if self.nodes_env and self.sync_barrier:
            env[self.nodes_env] = ",".join(self.node_names)
        return env

    # -- talking to nodes (erl_call) ---------------------------------------------------

    @property
    def erl_call(self) -> ErlCall:
        """An :class:`ErlCall` with this cluster's cookie and EPMD port."""
        if self._erl_call is None:
            self._erl_call = ErlCall(home=self.home, epmd_port=self.epmd_port)
        return self._erl_call

    def eval(self, ref: NodeRef, expr: str, *, timeout: float = 30.0) -> str:
        """Evaluate Erlang ``expr`` on a node; returns the ``~p`` text (see ErlCall.eval)."""
        return self.erl_call.eval(self.node(ref).name, expr, timeout=self._scaled(timeout))

    def ping(self, ref: NodeRef, *, timeout: float = 3.0) -> bool:
        """True when the node answers within ``timeout`` seconds."""
        return self.erl_call.ping(self.node(ref).name, timeout=self._scaled(timeout))

    def wait_ready(self, refs: Iterable[NodeRef] | None = None, *, timeout: float = 60.0) -> None:
        """Wait until every node (or ``refs``) answers and runs every application of its
        release (:data:`erlbridge.testing.release.READY_EXPR`).

        Raises :class:`NodeDown` (with the node's boot log) when a node's process ended,
        :class:`Timeout` (with the logs of the nodes not ready) otherwise.
        """
        targets = [self.node(r) for r in refs] if refs is not None else list(self.nodes)
        deadline = time.monotonic() + self._scaled(timeout)
        pending = list(targets)
        last: dict[str, str] = {}
        while pending:
            for node in list(pending):
                if not self.is_running(node):
                    raise NodeDown(
                        node.name,
                        f"process ended while starting; log:\n{self.logs(node, tail_lines=60)}",
                    )
                try:
                    answer = self.erl_call.eval(node.name, READY_EXPR, timeout=3.0)
                except (NodeDown, Timeout):
                    continue
                except Exception:  # any answer but true: not ready yet
                    continue
                last[node.name] = answer
                if answer == "true":
                    pending.remove(node)
            if not pending:
                return
            if time.monotonic() > deadline:
                names = ", ".join(n.name for n in pending)
                detail = "".join(
                    f"\n--- {n.name} (last answer: {last.get(n.name, 'none')}), log:\n"
                    f"{self.logs(n, tail_lines=40)}"
                    for n in pending
                )
                raise Timeout(
                    f"waiting for nodes {names} to run their release{detail}", self._scaled(timeout)
                )
            time.sleep(0.2)

    def wait_unreachable(self, ref: NodeRef, *, timeout: float = 30.0) -> None:
        """Wait until the node no longer answers; raises :class:`Timeout`."""
        node = self.node(ref)
        deadline = time.monotonic() + self._scaled(timeout)
        while self.erl_call.ping(node.name, timeout=1.0):
            if time.monotonic() > deadline:
                raise Timeout(f"waiting for {node.name} to stop answering", timeout)
            time.sleep(0.2)

    def unresponsive_nodes(self) -> list[ClusterNode]:
        """Nodes that do not answer a ping now (used to pick logs for a failed test)."""
        return [n for n in self.nodes if not self.erl_call.ping(n.name, timeout=2.0)]

    def observer(self, *, net_ticktime: int | None = None) -> ObserverNode:
        """Start a plain-Erlang observer node for this cluster (closed with the cluster)."""
        obs = ObserverNode(
            home=self.home,
            epmd_port=self.epmd_port,
            host=self.client_host(),
            net_ticktime=net_ticktime if net_ticktime is not None else self.net_ticktime,
        )
        obs.start(timeout=self._scaled(30.0))
        self._observers.append(obs)
        return obs

    def client_host(self) -> str:
        """The address the machine's Erlang clients use in their node names."""
        return "127.0.0.1"

    # -- release upgrades (through erlbridge's driver) --------------------------------

    def upgrade(
        self,
        tarball: str | os.PathLike[str],
        *,
        check: bool = True,
        journal: Path | None = None,
        **driver_options: Any,
    ) -> Any:
        """Upgrade every node to the release in ``tarball`` (uploaded, unpacked, installed
        and made permanent by ``release_handler``, all nodes at once); returns the
        driver's :class:`~erlbridge.driver.RunReport`.

        With ``check`` a failed node raises :class:`~erlbridge.exceptions.UpgradeFailed`
        (its report attached). The journal goes to ``journal`` (default: a new file in
        the work directory); :attr:`journals` lists them. ``driver_options`` go to
        :class:`~erlbridge.driver.Driver` (e.g. ``node_timeout``, ``canary``).
        """
        return self._release_op("upgrade", tarball, check, journal, driver_options)

    def downgrade(
        self, vsn: str, *, check: bool = True, journal: Path | None = None, **driver_options: Any
    ) -> Any:
        """Go back to the still installed release ``vsn`` on every node (the relup's
        down-script); like :meth:`upgrade`."""
        return self._release_op("downgrade", vsn, check, journal, driver_options)

    def _release_op(
        self,
        op: str,
        release: str | os.PathLike[str],
        check: bool,
        journal: Path | None,
        options: dict[str, Any],
    ) -> Any:
        from erlbridge.testing.upgrades import run_release_op  # noqa: PLC0415 -- on use

        journal = journal or self.workdir / f"{op}-{len(self.journals) + 1}.journal"
        self.journals.append(journal)
        report = run_release_op(self, op, release, journal=journal, options=options)
        if check:
            report.raise_for_failures()
        return report

    # -- life cycle ------------------------------------------------------------------

    def start(self, *, timeout: float = 90.0) -> Cluster:
        """Start every node and wait until all answer; returns self.

        Until :meth:`close`, the cluster is also stopped when the process ends, on SIGTERM
        too (see :mod:`erlbridge.testing.cleanup`)."""
        cleanup.track(self, self.close)
        try:
            self._prepare()
            for node in self.nodes:
                self._start_node(node)
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.close()
            raise
        logger.info("%s cluster up: %s", self.backend, ", ".join(self.node_names))
        return self

    def close(self) -> None:
        """Stop observers and nodes and free resources (idempotent; never raises)."""
        if self._closed:
            return
        self._closed = True
        cleanup.untrack(self)
        for obs in self._observers:
            try:
                obs.close()
            except Exception:  # cleanup must go on
                logger.exception("closing observer")
        try:
            self._teardown()
        except Exception:
            logger.exception("tearing down %s cluster", self.backend)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def restart(self, ref: NodeRef, *, timeout: float = 60.0) -> None:
        """Kill the node if it runs, start it again (same name, same files), wait ready."""
        node = self.node(ref)
        if self.is_running(node):
            self.kill(node)
        self._start_node(node)
        self.wait_ready([node], timeout=timeout)

    def reconnect(self, ref: NodeRef, *, timeout: float = 30.0) -> None:
        """Undo :meth:`disconnect` and connect the node to its peers again."""
        node = self.node(ref)
        self._reconnect(node)
        peers = [n.name for n in self.nodes if n != node and self.is_running(n)]
        deadline = time.monotonic() + self._scaled(timeout)
        while True:
            try:
                expr = f"[net_kernel:connect_node(N) || N <- {_atom_list(peers)}]"
                answer = self.erl_call.eval(node.name, expr, timeout=5.0)
                if "false" not in answer:
                    return
            except (NodeDown, Timeout):
                pass
            if time.monotonic() > deadline:
                raise Timeout(f"reconnecting {node.name}", timeout)
            time.sleep(0.3)

    @contextlib.contextmanager
    def supervise(
        self, refs: Iterable[NodeRef] | None = None, *, timeout: float = 60.0
    ) -> Iterator[NodeSupervisor]:
        """Stand in for ``heart`` while the ``with`` block runs: whenever a supervised
        node's process/container exits (for any reason: ``init:reboot()``, a crash,
        :meth:`kill`), start it again and wait until it is ready (``timeout`` seconds).

        Supervises every node, or ``refs``. Yields a :class:`NodeSupervisor` (restart
        counts, :meth:`NodeSupervisor.wait_restarted`). Leaving the block stops watching
        and waits for restarts in progress; then the first restart that failed is raised
        (unless the block itself raised). Do not call :meth:`restart` or :meth:`close` on a
        supervised node inside the block: both would race with the supervisor.
        """
        targets = [self.node(r) for r in refs] if refs is not None else list(self.nodes)
        sup = NodeSupervisor(self, targets, restart_timeout=timeout)
        sup.start()
        failed = True
        try:
            yield sup
            failed = False
        finally:
            sup.stop()
        if not failed:
            sup.raise_errors()

    def _wait_exit(self, node: ClusterNode, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until the node's process/container has ended;
        True when it has. Polls :meth:`is_running`; backends may wait more cheaply."""
        deadline = time.monotonic() + timeout
        while self.is_running(node):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    # -- backend hooks ----------------------------------------------------------------

    @abstractmethod
    def _prepare(self) -> None:
        """Choose node names/addresses (fill ``self.nodes``) and set up shared resources."""

    @abstractmethod
    def _start_node(self, node: ClusterNode) -> None:
        """Start one node's process/container (do not wait)."""

    @abstractmethod
    def _teardown(self) -> None:
        """Stop everything started by this cluster."""

    @abstractmethod
    def is_running(self, ref: NodeRef) -> bool:
        """True while the node's process/container runs (paused counts as running)."""

    @abstractmethod
    def kill(self, ref: NodeRef) -> None:
        """Kill the node at once (SIGKILL); returns when it is gone."""

    @abstractmethod
    def pause(self, ref: NodeRef) -> None:
        """Freeze the node (SIGSTOP / docker pause); peers see it silent, not closed."""

    @abstractmethod
    def unpause(self, ref: NodeRef) -> None:
        """Undo :meth:`pause`."""

    @abstractmethod
    def disconnect(self, ref: NodeRef) -> None:
        """Partition the node from every other node (and from the test's clients)."""

    @abstractmethod
    def _reconnect(self, node: ClusterNode) -> None:
        """Undo the partition at the backend level."""

    @abstractmethod
    def logs(self, ref: NodeRef, *, tail_lines: int = 200) -> str:
        """The last ``tail_lines`` lines the node wrote to stdout/stderr."""


class NodeSupervisor:
    """Restarts nodes of a cluster whose process/container ended, as ``heart`` would
    (one watcher thread per node). Made by :meth:`Cluster.supervise`; not thread-safe
    to share beyond reading :attr:`restarts` and calling :meth:`wait_restarted`.
    """

    def __init__(
        self, cluster: Cluster, nodes: Sequence[ClusterNode], *, restart_timeout: float
    ) -> None:
        self.cluster = cluster
        self.nodes = tuple(nodes)
        self.restart_timeout = restart_timeout
        self.restarts: dict[str, int] = {n.name: 0 for n in self.nodes}
        """Completed restarts per node name (the node answered again)."""
        self.errors: dict[str, BaseException] = {}
        """Per node name: why restarting it failed (that node is no longer watched)."""
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for node in self.nodes:
            t = threading.Thread(
                target=self._watch, args=(node,), name=f"supervise {node.name}", daemon=True
            )
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop watching; waits for restarts in progress."""
        self._stop.set()
        for t in self._threads:
            t.join(self.cluster._scaled(self.restart_timeout) + 30.0)

    def _watch(self, node: ClusterNode) -> None:
        while not self._stop.is_set():
            # Short waits, so that stop() is noticed within a second.
            if not self.cluster._wait_exit(node, 1.0):
                continue
            if self._stop.is_set() or self.cluster._closed:
                return
            logger.info("supervisor: %s ended, starting it again", node.name)
            try:
                self.cluster._start_node(node)
                self.cluster.wait_ready([node], timeout=self.restart_timeout)
            except Exception as exc:  # reported by wait_restarted / the context exit
                logger.warning("supervisor: restarting %s failed: %s", node.name, exc)
                with self._cond:
                    self.errors[node.name] = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self.restarts[node.name] += 1
                self._cond.notify_all()

    def wait_restarted(
        self, refs: Iterable[NodeRef] | None = None, *, count: int = 1, timeout: float = 120.0
    ) -> None:
        """Wait until every supervised node (or ``refs``) has been restarted at least
        ``count`` times and answered. Raises the restart's error if one failed,
        :class:`Timeout` after ``timeout`` seconds (scaled by the cluster's factor)."""
        names = (
            [self.cluster.node(r).name for r in refs]
            if refs is not None
            else [n.name for n in self.nodes]
        )
        unknown = [n for n in names if n not in self.restarts]
        if unknown:
            raise LookupError(f"not supervised: {unknown}")
        limit = self.cluster._scaled(timeout)
        deadline = time.monotonic() + limit
        with self._cond:
            while True:
                for name in names:
                    if name in self.errors:
                        raise self.errors[name]
                pending = [n for n in names if self.restarts[n] < count]
                if not pending:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout(f"waiting for {', '.join(pending)} to restart", limit)
                self._cond.wait(left)

    def raise_errors(self) -> None:
        """Raise the first restart failure, if any."""
        for exc in self.errors.values():
            raise exc


def _atom_list(names: Sequence[str]) -> str:
    return "[" + ",".join(f"'{n}'" for n in names) + "]"
