"""Shared CLI plumbing: exit codes, common options, opening the Python node, targets.

Exit codes (documented in ``erlbridge --help`` and docs/cli.md):

* 0 — everything asked for succeeded on every node;
* 1 — the command ran but some node failed (or a check found errors);
* 2 — usage error (bad option, unreadable file, malformed Erlang text, no cookie);
* 3 — cannot connect: the local node could not start, or no target could be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fnmatch
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from erlbridge.cli._cookie import Cookie, CookieNotFound, resolve_cookie
from erlbridge.cli._local_host import local_host_for
from erlbridge.cli._output import Output
from erlbridge.display import erlang_text, plain
from erlbridge.exceptions import (
    BadRpc,
    EpmdError,
    HandshakeError,
    NodeDown,
    RemoteException,
    Timeout,
)

if TYPE_CHECKING:
    from erlbridge.asyncio import Node

__all__ = [
    "BadInput",
    "EXIT_CONNECT",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CannotConnect",
    "Connection",
    "connection_options",
    "describe_error",
    "json_option",
    "open_node",
    "resolve_targets",
    "run_async",
    "targets_options",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: Errors that mean "we could not reach the cluster at all".
CONNECT_ERRORS = (EpmdError, HandshakeError, NodeDown, ConnectionError, OSError)


class CannotConnect(click.ClickException):
    """Exit code 3: the local node could not start or no target could be reached."""

    exit_code = EXIT_CONNECT

    def show(self, file: Any = None) -> None:
        click.echo(f"erlbridge: cannot connect: {self.format_message()}", err=True)


class BadInput(click.UsageError):
    """Exit code 2, one line: an input the command refuses before it does anything."""

    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:
        click.echo(f"erlbridge: {self.format_message()}", err=True)


class Failed(click.ClickException):
    """Exit code 1 with a message."""

    exit_code = EXIT_FAILED

    def show(self, file: Any = None) -> None:
        click.echo(f"erlbridge: {self.format_message()}", err=True)


@dataclass(frozen=True, slots=True)
class Connection:
    """How the CLI's own (hidden) node is started."""

    name: str | None
    cookie: Cookie
    epmd_port: int | None
    timeout: float

    def node_name(self, example_target: str | None) -> str:
        """Our node name: ``--name``, else ``erlbridge-cli-<N>@<host>``.

        ``host`` is this machine's, chosen from a target's host so that short and long
        names stay consistent with the cluster (a long-name node cannot talk to a
        short-name one) and the node can listen on it (see :mod:`._local_host`: the
        target's host when it is this machine, else the local address routing to it).
        ``N`` is the pid modulo 1024: every node name becomes an atom on each target, so
        a name per pid would leak atoms run after run (cron jobs); 1024 names bound that
        while two CLI runs at the same time rarely share one (a clash is a clear
        handshake error).
        """
        if self.name:
            return self.name
        host = "127.0.0.1"
        if example_target and "@" in example_target:
            host = example_target.split("@", 1)[1]
            if ":" in host and not host.startswith("["):  # NAME@HOST:PORT
                host = host.rpartition(":")[0]
            host = local_host_for(host)
        return f"erlbridge-cli-{os.getpid() % 1024}@{host}"


def json_option(function: F) -> F:
    """``--json``: print one JSON document on stdout instead of tables."""
    return click.option(
        "--json",
        "json_mode",
        is_flag=True,
        help="Print one JSON document on stdout (progress still goes to stderr).",
    )(function)


def connection_options(function: F) -> F:
    """Options for the CLI's own node: name, cookie, EPMD port, timeout."""
    decorators = [
        click.option(
            "--name",
            envvar="ERLBRIDGE_NAME",
            metavar="NAME@HOST",
            help="Name of erlbridge's hidden node [env ERLBRIDGE_NAME; default "
            "erlbridge-cli-<pid mod 1024>@<host of the first target>].",
        ),
        click.option(
            "--cookie-file",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar="ERLBRIDGE_COOKIE_FILE",
            help="Read the cookie from FILE [env ERLBRIDGE_COOKIE_FILE]. Without it: "
            "$ERLANG_COOKIE, then ~/.erlang.cookie.",
        ),
        click.option(
            "--cookie",
            "cookie_text",
            metavar="COOKIE",
            help="UNSAFE: the cookie on the command line, visible to every user in the "
            "process list. Prefer --cookie-file or ERLANG_COOKIE.",
        ),
        click.option(
            "--epmd-port",
            type=int,
            envvar="ERL_EPMD_PORT",
            help="EPMD port [env ERL_EPMD_PORT; default 4369].",
        ),
        click.option(
            "--timeout",
            type=float,
            default=10.0,
            show_default=True,
            envvar="ERLBRIDGE_TIMEOUT",
            help="Seconds for connecting and for each remote call.",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def targets_options(function: F) -> F:
    """``--targets``/``--seed``/``--match``: which nodes a command works on."""
    decorators = [
        click.option(
            "-t",
            "--targets",
            multiple=True,
            envvar="ERLBRIDGE_TARGETS",
            metavar="NODES",
            help="Target nodes, comma-separated or repeated [env ERLBRIDGE_TARGETS].",
        ),
        click.option(
            "--seed",
            metavar="NODE",
            help="Discover the targets from NODE: NODE itself plus the nodes it is connected to.",
        ),
        click.option(
            "--match",
            "match_glob",
            metavar="GLOB",
            help="With --seed: keep only nodes whose name matches GLOB (e.g. 'app*@*').",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def make_connection(
    *,
    name: str | None,
    cookie_file: Path | None,
    cookie_text: str | None,
    epmd_port: int | None,
    timeout: float,
    output: Output,
) -> Connection:
    """Resolve the cookie (usage error if none) and warn when it came from argv."""
    try:
        cookie = resolve_cookie(
            cookie=cookie_text, cookie_file=cookie_file, env=os.environ, home=Path.home()
        )
    except CookieNotFound as exc:
        raise click.UsageError(str(exc)) from exc
    logger.info("cookie from %s", cookie.source)  # the source, never the value
    if cookie_text:
        output.warn("--cookie puts the cookie in the process list; prefer --cookie-file")
    if timeout <= 0:
        raise click.BadParameter("must be positive", param_hint="--timeout")
    return Connection(name, cookie, epmd_port, timeout)


def split_nodes(values: Iterable[str]) -> list[str]:
    """``("a@h,b@h", "c@h")`` -> ``["a@h", "b@h", "c@h"]`` (order kept, duplicates dropped)."""
    nodes: list[str] = []
    for value in values:
        for raw in value.replace(" ", ",").split(","):
            part = raw.strip()
            if not part:
                continue
            if "@" not in part:
                raise click.BadParameter(f"{part!r} is not a node name (NAME@HOST)")
            if part not in nodes:
                nodes.append(part)
    return nodes


@contextlib.asynccontextmanager
async def open_node(conn: Connection, example_target: str | None) -> AsyncIterator[Node]:
    """Start erlbridge's hidden node; failures to start are :class:`CannotConnect`."""
    from erlbridge.asyncio import Node  # noqa: PLC0415 (keep --help fast)

    name = conn.node_name(example_target)
    # A CLI run leaves no epmd daemon behind: without one it connects out only.
    node = Node(name, cookie=conn.cookie.value, hidden=True, epmd_port=conn.epmd_port,
                start_epmd=False)
    try:
        try:
            await asyncio.wait_for(node.__aenter__(), conn.timeout)
        except (EpmdError, OSError) as exc:
            # No local EPMD (a laptop talking to remote nodes), or a name whose address is
            # not this machine's (--name): connect out without a listener; the targets
            # can still answer over the connections we open.
            if not isinstance(exc, EpmdError) and exc.errno != errno.EADDRNOTAVAIL:
                raise
            why = "no local EPMD" if isinstance(exc, EpmdError) else f"cannot listen on {name}"
            logger.info("%s (%s): starting without a listener", why, exc)
            await node.close()
            node = Node(
                name,
                cookie=conn.cookie.value,
                hidden=True,
                epmd_port=conn.epmd_port,
                listen=False,
            )
            await asyncio.wait_for(node.__aenter__(), conn.timeout)
    except (TimeoutError, Timeout) as exc:
        raise CannotConnect(f"erlbridge's node did not start within {conn.timeout:g} s") from exc
    except CONNECT_ERRORS as exc:
        raise CannotConnect(f"could not start erlbridge's node: {exc}") from exc
    try:
        yield node
    finally:
        await node.__aexit__(*sys.exc_info())


async def connect_all(node: Node, targets: Sequence[str], timeout: float) -> dict[str, str]:
    """Connect to every target concurrently; return ``{node: why}`` for those unreachable."""

    async def one(target: str) -> tuple[str, str | None]:
        try:
            await node.connect(target, timeout=timeout)
        except (TimeoutError, Timeout):
            return target, f"no connection within {timeout:g} s"
        except CONNECT_ERRORS as exc:
            # Keyed by the node: say why, not "node X is down: why" / "cannot reach X: why"
            reason = getattr(exc, "reason", None) if isinstance(exc, NodeDown) else None
            if reason is not None:
                return target, plain(reason)
            return target, str(exc) or type(exc).__name__
        return target, None

    results = await asyncio.gather(*(one(t) for t in targets))
    return {t: err for t, err in results if err is not None}


async def resolve_targets(
    node: Node,
    *,
    targets: Sequence[str],
    seed: str | None,
    match_glob: str | None,
    timeout: float,
) -> list[str]:
    """The explicit targets, or those discovered from ``seed`` (filtered by ``match_glob``)."""
    nodes = split_nodes(targets)
    if seed:
        from erlbridge.asyncio.driver import discover  # noqa: PLC0415

        try:
            found = await discover(node, seed, timeout=timeout)
        except (*CONNECT_ERRORS, Timeout, TimeoutError) as exc:
            raise CannotConnect(f"seed {seed}: {exc}") from exc
        for name in (plain(n) for n in found):
            if name not in nodes:
                nodes.append(name)
    if match_glob:
        kept = [n for n in nodes if fnmatch.fnmatchcase(n, match_glob)]
        if nodes and not kept:
            raise click.UsageError(f"no node matches {match_glob!r} (found {', '.join(nodes)})")
        nodes = kept
    if not nodes:
        raise click.UsageError("no targets: pass --targets NODES or --seed NODE")
    return nodes


def describe_error(error: BaseException | None) -> str:
    """One line for an error, with Erlang reasons as Erlang text (not Python reprs)."""
    if error is None:
        return ""
    node = getattr(error, "node", None)
    where = f" on {plain(node)}" if node else ""
    if isinstance(error, RemoteException):
        return f"{error.kind}:{erlang_text(error.reason, width=10_000)}{where}"
    if isinstance(error, BadRpc):
        return f"badrpc: {erlang_text(error.reason, width=10_000)}{where}"
    return str(error) or type(error).__name__


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """Run the command's coroutine; Ctrl-C cancels it and exits with 130."""
    try:
        return asyncio.run(_call(main))
    except KeyboardInterrupt:
        click.echo("erlbridge: interrupted", err=True)
        sys.exit(130)


async def _call(main: Callable[[], Awaitable[T]]) -> T:
    return await main()
