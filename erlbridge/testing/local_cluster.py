"""The local backend: :class:`LocalCluster`, release nodes run as target systems on
this machine (one process each, a private ``epmd``). See :mod:`erlbridge.testing.cluster`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any, ClassVar

from erlbridge.exceptions import InvalidState, NodeDown
from erlbridge.testing.cluster_base import Cluster, ClusterNode, NodeRef, free_port
from erlbridge.testing.erlang import CookieHome, ErlCall, local_otp_release
from erlbridge.testing.release import ReleaseInfo, configure_node_files

__all__ = ["LocalCluster"]


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
            raise InvalidState(
                f"{self.release_tarball.name} has no erts and there is no erl on PATH to run it"
            )
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
                        self.otp_release = (
                            self._release_otp()
                            if self.release.includes_erts
                            else local_otp_release()
                        )
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
        env = home.env(
            {
                "ERL_EPMD_PORT": str(self.epmd_port),
                **files_env,
                **self.node_env(node),
            }
        )
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
            '{ok, B} = file:read_file(filename:join(H, ".erlang.cookie")), '
            "erlang:set_cookie(node(), binary_to_atom(string:trim(B), utf8)).\n"
        )
        env = self.home.env({"ERL_EPMD_PORT": str(self.epmd_port)})
        out = subprocess.run(
            [
                self.erl_call.erl_call,
                *ErlCall.client_name_args(),
                "-name",
                node.name,
                "-c",
                part,
                "-timeout",
                "10",
                "-e",
            ],
            input=expr,
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
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
