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
from erlbridge.cli._options import ConnectionOptions, TargetOptions
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
    "describe_error",
    "first_target",
    "make_connection",
    "open_node",
    "resolve_targets",
    "run_async",
    "split_nodes",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3

logger = logging.getLogger(__name__)

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


def make_connection(options: ConnectionOptions, output: Output) -> Connection:
    """Resolve the cookie (usage error if none) and warn when it came from argv."""
    try:
        cookie = resolve_cookie(
            cookie=options.cookie_text,
            cookie_file=options.cookie_file,
            env=os.environ,
            home=Path.home(),
        )
    except CookieNotFound as exc:
        raise click.UsageError(str(exc)) from exc
    logger.info("cookie from %s", cookie.source)  # the source, never the value
    if options.cookie_text:
        output.warn("--cookie puts the cookie in the process list; prefer --cookie-file")
    if options.timeout <= 0:
        raise click.BadParameter("must be positive", param_hint="--timeout")
    return Connection(options.name, cookie, options.epmd_port, options.timeout)


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


def first_target(targets: TargetOptions) -> str | None:
    """The seed, else the first explicit target: it picks the host of our node's name."""
    return targets.seed or next(iter(split_nodes(targets.targets)), None)


async def resolve_targets(node: Node, targets: TargetOptions, *, timeout: float) -> list[str]:
    """The explicit targets, or those discovered from ``seed`` (filtered by ``match_glob``)."""
    seed, match_glob = targets.seed, targets.match_glob
    nodes = split_nodes(targets.targets)
    if seed:
        from erlbridge.driver import discover  # noqa: PLC0415

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
