"""Talk to Erlang nodes with Erlang's own tools (L4 test support; no erlbridge node).

Until (and besides) the Python node, tests reach nodes through:

* :class:`ErlCall` -- ``erl_call`` (from ``erl_interface``), a few milliseconds per call:
  evaluate Erlang expressions on a node and get the ``~p`` printout back as text.
* :func:`run_escript` -- a plain-Erlang script run as a throw-away client node.
* :class:`ObserverNode` -- a long-running hidden ``erl`` node that connects to nodes and
  reports ``nodeup``/``nodedown`` as lines, read by a background thread.

The cookie is never put on a command line: every process gets a private ``HOME``
(:class:`CookieHome`) whose ``.erlang.cookie`` (mode 0400) holds it; ``erl``,
``erl_call`` and ``escript`` read it from there.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from erlbridge.exceptions import BadRpc, InvalidState, NodeDown, RemoteException, Timeout

__all__ = [
    "CookieHome",
    "ErlCall",
    "NodeEvent",
    "ObserverNode",
    "find_erl",
    "find_erl_call",
    "local_otp_release",
    "new_cookie",
    "run_escript",
]

logger = logging.getLogger(__name__)


def new_cookie() -> str:
    """A random cookie (32 hex digits)."""
    return secrets.token_hex(16)


def find_erl() -> str | None:
    """Path of the machine's ``erl``, or None."""
    return shutil.which("erl")


@functools.cache
def _erl_lib_dir(app: str) -> str | None:
    erl = find_erl()
    if erl is None:
        return None
    out = subprocess.run(
        [erl, "-noshell", "-eval", f'io:format("~s", [code:lib_dir({app})]), halt().'],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return out.stdout.strip() or None if out.returncode == 0 else None


def find_erl_call() -> str | None:
    """Path of ``erl_call`` (``$ERL_CALL``, PATH, or erl_interface's ``bin``), or None."""
    explicit = os.environ.get("ERL_CALL")
    if explicit:
        return explicit
    found = shutil.which("erl_call")
    if found:
        return found
    lib = _erl_lib_dir("erl_interface")
    if lib is None:
        return None
    candidate = Path(lib) / "bin" / "erl_call"
    return str(candidate) if candidate.exists() else None


@functools.cache
def local_otp_release() -> str | None:
    """The OTP release of the machine's ``erl`` (e.g. ``"25"``), or None without Erlang."""
    erl = find_erl()
    if erl is None:
        return None
    out = subprocess.run(
        [erl, "-noshell", "-eval",
         'io:format("~s", [erlang:system_info(otp_release)]), halt().'],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return out.stdout.strip() or None if out.returncode == 0 else None


class CookieHome:
    """A private ``HOME`` directory holding ``.erlang.cookie`` (mode 0400).

    The directory is created (mode 0700) if needed. :meth:`env` returns an environment
    for a child process with ``HOME`` pointing here.
    """

    def __init__(self, path: Path, cookie: str) -> None:
        self.path = path
        self.cookie = cookie
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
        self.cookie_file = path / ".erlang.cookie"
        if self.cookie_file.exists():
            self.cookie_file.chmod(0o600)
        # Create with 0600 before writing, so the cookie is never world-readable.
        fd = os.open(self.cookie_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(cookie)
        self.cookie_file.chmod(0o400)

    def env(
        self, extra: Mapping[str, str] | None = None, *, base: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """``base`` (default ``os.environ``) with ``HOME`` set here, plus ``extra``.

        ``ERL_EPMD_PORT`` and ``ERLANG_COOKIE`` of ``base`` are dropped, so a child
        never inherits another cluster's EPMD port; pass ``ERL_EPMD_PORT`` in ``extra``.
        """
        env = dict(os.environ if base is None else base)
        env.pop("ERL_EPMD_PORT", None)
        env.pop("ERLANG_COOKIE", None)
        env["HOME"] = str(self.path)
        env.update(extra or {})
        return env

    def __repr__(self) -> str:
        return f"CookieHome({str(self.path)!r})"


class ErlCall:
    """Evaluate Erlang expressions on nodes with ``erl_call`` (cookie from ``home``).

    ``epmd_port`` is the EPMD port the target nodes registered with (None: 4369).
    """

    def __init__(
        self, *, home: CookieHome, epmd_port: int | None = None, erl_call: str | None = None
    ) -> None:
        found = erl_call or find_erl_call()
        if found is None:
            raise InvalidState("erl_call not found (install erlang-nox / erl_interface)")
        self.erl_call = found
        self.home = home
        self.epmd_port = epmd_port

    def _env(self) -> dict[str, str]:
        extra = {} if self.epmd_port is None else {"ERL_EPMD_PORT": str(self.epmd_port)}
        return self.home.env(extra)

    @staticmethod
    def client_name_args() -> list[str]:
        """``-h <unique name>``: erl_call's default client name is the same for every call,
        so two concurrent calls to one node would collide (the second fails to connect)."""
        return ["-h", f"erl_call_{secrets.token_hex(6)}"]

    def eval(self, node: str, expr: str, *, timeout: float = 10.0) -> str:
        """Evaluate ``expr`` (Erlang expressions, ``.`` optional) on ``node``.

        Returns the value as ``erl_call`` prints it (erl_interface's term printer:
        ``", "`` between elements, strings in double quotes, e.g. ``{ok, "2.0.0"}``,
        ``['a@h', 'b@h']``); the same text for every target OTP release.
        Raises :class:`NodeDown` when the node cannot be reached,
        :class:`RemoteException` when the evaluation raised,
        :class:`BadRpc` for other errors (e.g. a syntax error), :class:`Timeout`.
        """
        text = expr.strip()
        if not text.endswith("."):
            text += "."
        text += "\n"  # erl_call -e wants the form terminated by ".<newline>"
        secs = max(1, int(timeout + 0.999))
        try:
            out = subprocess.run(
                [self.erl_call, *self.client_name_args(), "-name", node,
                 "-timeout", str(secs), "-e"],
                input=text,
                capture_output=True,
                text=True,
                env=self._env(),
                timeout=timeout + 5.0,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise Timeout(f"erl_call on {node}", timeout) from exc
        stdout = out.stdout.strip()
        if out.returncode != 0 or not stdout:
            reason = (out.stderr.strip() or stdout or f"exit status {out.returncode}")
            if "timeout" in reason.lower() or out.returncode == 2:
                raise Timeout(f"erl_call on {node}: {reason}", timeout)
            raise NodeDown(node, reason)
        if stdout.startswith("{ok,") and stdout.endswith("}"):
            return stdout[len("{ok,"):-1].strip()
        if stdout.startswith("{error,"):
            detail = stdout[len("{error,"):-1].strip()
            if "*** eval: {'EXIT'" in detail or "exception" in detail:
                raise RemoteException("error", detail, None, node)
            raise BadRpc(detail, node)
        raise BadRpc(stdout, node)

    def ping(self, node: str, *, timeout: float = 3.0) -> bool:
        """True when ``node`` answers an evaluation within ``timeout`` seconds."""
        try:
            return self.eval(node, "node()", timeout=timeout) == f"'{node}'"
        except (NodeDown, Timeout, BadRpc):
            return False


def run_escript(
    script: Path,
    args: Sequence[str],
    *,
    home: CookieHome,
    epmd_port: int | None = None,
    timeout: float = 120.0,
    escript: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a plain-Erlang escript (a throw-away client node) and return its result.

    The escript starts distribution itself; its cookie comes from ``home``.
    Raises :class:`Timeout` when it does not finish within ``timeout`` seconds.
    """
    exe = escript or shutil.which("escript")
    if exe is None:
        raise InvalidState("escript not found (install erlang-nox)")
    extra = dict(extra_env or {})
    if epmd_port is not None:
        extra["ERL_EPMD_PORT"] = str(epmd_port)
    try:
        return subprocess.run(
            [exe, str(script), *args],
            capture_output=True,
            text=True,
            env=home.env(extra),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise Timeout(f"escript {script.name}", timeout) from exc


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """A line the observer printed: ``kind`` is nodeup, nodedown, connect or ready."""

    kind: str
    node: str
    detail: str
    monotonic: float


# Runs inside the observer node. Reads commands from stdin ("connect NODE", "quit"),
# prints one event per line. monitor_nodes with node_type all also reports the
# hidden connections a hidden observer has.
_OBSERVER_CODE = r"""
ok = net_kernel:monitor_nodes(true, [{node_type, all}]),
Self = self(),
spawn_link(fun Reader() ->
    case io:get_line(standard_io, "") of
        eof -> Self ! quit;
        {error, _} -> Self ! quit;
        Line ->
            case string:lexemes(string:trim(Line), " ") of
                ["connect", N] -> Self ! {connect, list_to_atom(N)};
                ["quit"] -> Self ! quit;
                _ -> ok
            end,
            Reader()
    end
end),
io:format("ready ~s~n", [node()]),
Loop = fun L() ->
    receive
        {nodeup, N, _} -> io:format("nodeup ~s~n", [N]), L();
        {nodedown, N, Info} -> io:format("nodedown ~s ~0p~n", [N, Info]), L();
        {connect, N} -> io:format("connect ~s ~p~n", [N, net_kernel:connect_node(N)]), L();
        quit -> halt(0);
        _ -> L()
    end
end,
Loop().
"""


class ObserverNode:
    """A plain Erlang node (the machine's ``erl``, hidden, not listening) that watches nodes.

    Start it with :meth:`start`, connect with :meth:`connect`, then wait for events
    with :meth:`wait_for`. Close it with :meth:`close` (or use it as a context manager).
    ``net_ticktime`` (seconds) bounds how long a silent peer takes to be seen as down.
    """

    def __init__(
        self,
        *,
        home: CookieHome,
        epmd_port: int | None = None,
        host: str = "127.0.0.1",
        net_ticktime: int | None = None,
        erl: str | None = None,
    ) -> None:
        exe = erl or find_erl()
        if exe is None:
            raise InvalidState("erl not found (install erlang-nox)")
        self.name = f"observer_{secrets.token_hex(4)}@{host}"
        argv = [exe, "-noshell", "-hidden", "-dist_listen", "false", "-name", self.name]
        if net_ticktime is not None:
            argv += ["-kernel", "net_ticktime", str(net_ticktime)]
        argv += ["-eval", _OBSERVER_CODE]
        extra = {} if epmd_port is None else {"ERL_EPMD_PORT": str(epmd_port)}
        self._argv = argv
        self._env = home.env(extra)
        self._events: queue.Queue[NodeEvent] = queue.Queue()
        self.history: list[NodeEvent] = []
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    def start(self, *, timeout: float = 30.0) -> None:
        """Start the node; returns when it printed ``ready``. Raises :class:`Timeout`."""
        self._proc = subprocess.Popen(
            self._argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self._env,
        )
        self._thread = threading.Thread(target=self._read, name="erl-observer", daemon=True)
        self._thread.start()
        self.wait_for("ready", None, timeout=timeout)

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            parts = line.strip().split(" ", 2)
            if not parts or not parts[0]:
                continue
            kind = parts[0]
            node = parts[1] if len(parts) > 1 else ""
            detail = parts[2] if len(parts) > 2 else ""
            event = NodeEvent(kind, node, detail, time.monotonic())
            logger.debug("observer: %s", line.strip())
            self._events.put(event)

    def connect(self, node: str, *, timeout: float = 15.0) -> bool:
        """Connect to ``node``; True when the connection was made."""
        self._send(f"connect {node}")
        event = self.wait_for("connect", node, timeout=timeout)
        return event.detail == "true"

    def _send(self, line: str) -> None:
        if self._proc is None or self._proc.stdin is None:
            raise InvalidState("observer not started")
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()

    def wait_for(self, kind: str, node: str | None, *, timeout: float) -> NodeEvent:
        """The first event of ``kind`` (for ``node``, if given) not consumed yet.

        Events seen before are kept in :attr:`history`. Raises :class:`Timeout`.
        """
        for event in self.history:
            if event.kind == kind and (node is None or event.node == node):
                self.history.remove(event)
                return event
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"observer waiting for {kind} {node or ''}".strip(), timeout)
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                continue
            if event.kind == kind and (node is None or event.node == node):
                return event
            self.history.append(event)

    def close(self) -> None:
        """Stop the node (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.write("quit\n")
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> ObserverNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
