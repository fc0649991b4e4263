"""Clusters of release nodes for tests (L4; plain classes, no pytest).

A :class:`Cluster` starts N nodes of any relx release (see :mod:`.release`), waits until
every application of the release runs on each, and offers fault helpers: kill,
pause/unpause, restart, disconnect / reconnect (a network partition of one node).
Two backends share this API:

* :class:`LocalCluster` -- target systems extracted from a release tarball into a work
  directory, each started with its own ``bin/NAME foreground`` (its own erts, or the
  machine's OTP when the tarball has none), all registered with a private ``epmd`` on a
  free port (``ERL_EPMD_PORT``).
* :class:`erlbridge.testing.docker_cluster.DockerCluster` -- containers of an image
  holding the release, on a Docker network made for the test session.

Each node's name and cookie are set in its extracted copy (``vm.args``), so releases
need no change (see :func:`erlbridge.testing.release.configure_node_files`).

Neither backend runs ``heart``: a node that reboots (``init:reboot()``, e.g. from
``release_handler:reboot_old_release/1``) just ends. :meth:`Cluster.supervise` stands in
for heart and starts such nodes again. A (re)started node boots the release that
``releases/start_erl.data`` names, i.e. the permanent one, as heart's restart would.

Node names are long names with IP addresses (``NAME1@127.0.0.1``, ``NAME@172.18.0.10``
where NAME is the release name). ``nodes_env`` names a variable that receives every
node name (comma-separated), e.g. ``FIXTURE_CLUSTER`` for the fixture release's
``sync_nodes`` barrier. The cookie never appears on a command line (see :mod:`.erlang`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from erlbridge.exceptions import InvalidState, NodeDown, Timeout
from erlbridge.testing import cleanup
from erlbridge.testing.erlang import (
    CookieHome,
    ErlCall,
    ObserverNode,
    local_otp_release,
    new_cookie,
)
from erlbridge.testing.release import READY_EXPR, ReleaseInfo, configure_node_files

__all__ = ["Cluster", "ClusterNode", "LocalCluster", "NodeRef", "NodeSupervisor", "free_port"]

logger = logging.getLogger(__name__)


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
                    raise NodeDown(node.name, f"process ended while starting; log:\n"
                                   f"{self.logs(node, tail_lines=60)}")
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
                    f"{self.logs(n, tail_lines=40)}" for n in pending)
                raise Timeout(f"waiting for nodes {names} to run their release{detail}",
                              self._scaled(timeout))
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

    def upgrade(self, tarball: str | os.PathLike[str], *, check: bool = True,
                journal: Path | None = None, **driver_options: Any) -> Any:
        """Upgrade every node to the release in ``tarball`` (uploaded, unpacked, installed
        and made permanent by ``release_handler``, all nodes at once); returns the
        driver's :class:`~erlbridge.driver.RunReport`.

        With ``check`` a failed node raises :class:`~erlbridge.exceptions.UpgradeFailed`
        (its report attached). The journal goes to ``journal`` (default: a new file in
        the work directory); :attr:`journals` lists them. ``driver_options`` go to
        :class:`~erlbridge.driver.Driver` (e.g. ``node_timeout``, ``canary``).
        """
        return self._release_op("upgrade", tarball, check, journal, driver_options)

    def downgrade(self, vsn: str, *, check: bool = True, journal: Path | None = None,
                  **driver_options: Any) -> Any:
        """Go back to the still installed release ``vsn`` on every node (the relup's
        down-script); like :meth:`upgrade`."""
        return self._release_op("downgrade", vsn, check, journal, driver_options)

    def _release_op(self, op: str, release: str | os.PathLike[str], check: bool,
                    journal: Path | None, options: dict[str, Any]) -> Any:
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
    def supervise(self, refs: Iterable[NodeRef] | None = None, *,
                  timeout: float = 60.0) -> Iterator[NodeSupervisor]:
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

    def __init__(self, cluster: Cluster, nodes: Sequence[ClusterNode], *,
                 restart_timeout: float) -> None:
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
            t = threading.Thread(target=self._watch, args=(node,),
                                 name=f"supervise {node.name}", daemon=True)
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

    def wait_restarted(self, refs: Iterable[NodeRef] | None = None, *, count: int = 1,
                       timeout: float = 120.0) -> None:
        """Wait until every supervised node (or ``refs``) has been restarted at least
        ``count`` times and answered. Raises the restart's error if one failed,
        :class:`Timeout` after ``timeout`` seconds (scaled by the cluster's factor)."""
        names = ([self.cluster.node(r).name for r in refs] if refs is not None
                 else [n.name for n in self.nodes])
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


class LocalCluster(Cluster):
    """Nodes of ``release_tarball`` (any relx release) run as target systems here.

    Each node is the tarball extracted into ``workdir/nodeN/root``, started with its
    start script's ``foreground`` command: the release's own erts when the tarball has
    one, else the machine's ``erl`` (which must then be the OTP the release was built
    for). All nodes register with a private ``epmd`` on a free port; node names are
    ``<name_prefix><i>@<host>`` (``name_prefix`` defaults to the release name).
    ``tarball_dir`` (default: the tarball's folder) is kept for callers that point a
    release at its other versions (the fixture reads ``FIXTURE_TARBALL_DIR``).
    """

    backend: ClassVar[str] = "local"

    def __init__(
        self,
        *,
        release_tarball: Path,
        size: int = 3,
        workdir: Path,
        tarball_dir: Path | None = None,
        name_prefix: str | None = None,
        host: str = "127.0.0.1",
        keep_files: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(size=size, workdir=workdir, **options)
        release_tarball = Path(release_tarball)
        if not release_tarball.is_file():
            raise InvalidState(f"release tarball {release_tarball} not found")
        self.release = ReleaseInfo.read(release_tarball)
        self.release_tarball = release_tarball
        self.tarball_dir = tarball_dir or release_tarball.parent
        self.name_prefix = name_prefix or self.release.name
        self.host = host
        self.keep_files = keep_files
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._epmd: subprocess.Popen[bytes] | None = None
        self._paused: set[str] = set()
        self._partition_cookies: dict[str, str] = {}

    def root(self, ref: NodeRef) -> Path:
        """The node's target-system directory (its ``code:root_dir()``)."""
        return self.workdir / f"node{self.node(ref).index + 1}" / "root"

    def _log_path(self, node: ClusterNode) -> Path:
        return self.workdir / f"node{node.index + 1}" / "node.log"

    def _prepare(self) -> None:
        if not self.release.includes_erts and shutil.which("erl") is None:
            raise InvalidState(f"{self.release_tarball.name} has no erts and there is no "
                               "erl on PATH to run it")
        self.nodes = tuple(
            ClusterNode(i, f"{self.name_prefix}{i + 1}@{self.host}", self.host)
            for i in range(self.size)
        )
        for node in self.nodes:
            root = self.root(node)
            if root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True)
            with tarfile.open(self.release_tarball) as tar:
                tar.extractall(root, filter="tar")
            CookieHome(root.parent / "home", self.cookie)
        self._start_epmd()

    def _start_epmd(self) -> None:
        erts = sorted(self.root(0).glob("erts-*"))
        epmd = str(erts[-1] / "bin" / "epmd") if erts else shutil.which("epmd")
        if epmd is None:
            raise InvalidState("epmd not found")
        for _attempt in range(5):
            port = free_port()
            proc = subprocess.Popen(
                [epmd, "-port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        self._epmd = proc
                        self.epmd_port = port
                        self.otp_release = (self._release_otp() if self.release.includes_erts
                                            else local_otp_release())
                        return
                except OSError:
                    time.sleep(0.05)
            proc.kill()
            proc.wait()
        raise InvalidState("could not start a private epmd")

    def _release_otp(self) -> str | None:
        data = (self.root(0) / "releases" / "start_erl.data").read_text().split()
        erts = data[0] if data else ""
        # erts 13 = OTP 25, 14 = 26, 15 = 27, 16 = 28, 17 = 29.
        try:
            return str(int(erts.split(".")[0]) + 12)
        except ValueError:
            return None

    def start_script(self, ref: NodeRef) -> Path:
        """The script that (re)starts the node: ``bin/NAME-VSN`` for the release
        ``releases/start_erl.data`` names (the permanent one; ``make_permanent`` and
        ``reboot_old_release`` rewrite that file), else ``bin/NAME``.

        relx's ``bin/NAME`` has the version it was built with written into it and only
        relx's own upgrade escript replaces it; release_handler does not. Booting it would
        start the first version again whatever release is permanent, unlike a heart
        restart of a target system, which boots from ``start_erl.data``.
        """
        root = self.root(ref)
        try:
            words = (root / "releases" / "start_erl.data").read_text().split()
        except OSError:
            words = []
        if len(words) == 2:
            script = root / "bin" / f"{self.release.name}-{words[1]}"
            if script.is_file():
                return script
        return root / "bin" / self.release.name

    def _start_node(self, node: ClusterNode) -> None:
        root = self.root(node)
        home = CookieHome(root.parent / "home", self.cookie)
        # Again at every start: release_handler unpacks new releases with their own
        # vm.args, which the permanent one may now be.
        files_env = configure_node_files(root, self.release.name, node.name, self.cookie)
        env = home.env({
            "ERL_EPMD_PORT": str(self.epmd_port),
            **files_env,
            **self.node_env(node),
        })
        log = self._log_path(node).open("ab")
        try:
            self._procs[node.name] = subprocess.Popen(
                [str(self.start_script(node)), "foreground"],
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self._paused.discard(node.name)
        self._partition_cookies.pop(node.name, None)

    def is_running(self, ref: NodeRef) -> bool:
        proc = self._procs.get(self.node(ref).name)
        return proc is not None and proc.poll() is None

    def _wait_exit(self, node: ClusterNode, timeout: float) -> bool:
        proc = self._procs.get(node.name)
        if proc is None:
            return True
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _signal(self, node: ClusterNode, sig: int) -> None:
        proc = self._procs.get(node.name)
        if proc is None or proc.poll() is not None:
            raise InvalidState(f"{node.name} is not running")
        os.killpg(proc.pid, sig)

    def kill(self, ref: NodeRef) -> None:
        node = self.node(ref)
        self._signal(node, signal.SIGKILL)
        self._procs[node.name].wait(timeout=30)
        self._paused.discard(node.name)

    def pause(self, ref: NodeRef) -> None:
        node = self.node(ref)
        self._signal(node, signal.SIGSTOP)
        self._paused.add(node.name)

    def unpause(self, ref: NodeRef) -> None:
        node = self.node(ref)
        self._signal(node, signal.SIGCONT)
        self._paused.discard(node.name)

    def disconnect(self, ref: NodeRef) -> None:
        """Partition by cookie: the node switches to a throw-away cookie and drops every
        connection, so no node (nor the test's clients) can talk to it until
        :meth:`reconnect`, which restores the real cookie from the node's own HOME.
        """
        node = self.node(ref)
        part = "partition_" + secrets.token_hex(8)
        expr = (
            "spawn(fun() -> timer:sleep(300), "
            f"erlang:set_cookie(node(), '{part}'), "
            "[erlang:disconnect_node(N) || N <- nodes(connected)] end), ok"
        )
        self.eval(node, expr, timeout=10.0)
        self._partition_cookies[node.name] = part
        time.sleep(0.6)

    def _reconnect(self, node: ClusterNode) -> None:
        part = self._partition_cookies.pop(node.name, None)
        if part is None:
            return
        # Only the throw-away partition cookie goes on erl_call's command line; the
        # node reads its real cookie back from its own HOME.
        expr = (
            "{ok, [[H]]} = init:get_argument(home), "
            "{ok, B} = file:read_file(filename:join(H, \".erlang.cookie\")), "
            "erlang:set_cookie(node(), binary_to_atom(string:trim(B), utf8)).\n"
        )
        env = self.home.env({"ERL_EPMD_PORT": str(self.epmd_port)})
        out = subprocess.run(
            [self.erl_call.erl_call, *ErlCall.client_name_args(), "-name", node.name,
             "-c", part, "-timeout", "10", "-e"],
            input=expr, capture_output=True, text=True, env=env, timeout=30, check=False,
        )
        if out.returncode != 0 or not out.stdout.startswith("{ok,"):
            raise NodeDown(node.name, f"could not undo the partition: {out.stdout}{out.stderr}")

    def logs(self, ref: NodeRef, *, tail_lines: int = 200) -> str:
        path = self._log_path(self.node(ref))
        if not path.exists():
            return ""
        lines = path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail_lines:])

    def _teardown(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                continue
            try:
                if name in self._paused:
                    os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for proc in self._procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._epmd is not None:
            self._epmd.kill()
            self._epmd.wait()
            self._epmd = None
        if not self.keep_files:
            for node in self.nodes:
                shutil.rmtree(self.root(node), ignore_errors=True)
