"""Cluster commands: ``nodes``, ``ping``, ``rpc``, ``releases``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import click

from erlbridge.cli._common import (
    EXIT_FAILED,
    CannotConnect,
    connect_all,
    describe_error,
    first_target,
    make_connection,
    open_node,
    resolve_targets,
    run_async,
    split_nodes,
)
from erlbridge.cli._options import (
    ConnectionOptions,
    TargetOptions,
    connection_options,
    output_option,
    targets_options,
)
from erlbridge.cli._output import Output
from erlbridge.display import Table, erlang_text, format_duration, plain
from erlbridge.exceptions import BadRpc, ErlbridgeError, NodeDown, Timeout

__all__ = ["nodes", "ping", "releases", "rpc"]


@click.command()
@click.argument("seed")
@click.option("--match", metavar="GLOB", help="Keep only names matching GLOB.")
@connection_options
@output_option()
def nodes(
    *,
    seed: str,
    match: str | None,
    conn: ConnectionOptions,
    output: Output,
) -> None:
    """List the cluster's nodes as seen from SEED (SEED plus the nodes it is connected to).

    \b
    Examples:
      erlbridge nodes app1@127.0.0.1
      erlbridge nodes app1@127.0.0.1 --match 'app*' --json
    """
    connection = make_connection(conn, output)
    timeout = connection.timeout

    async def main() -> list[str]:
        async with open_node(connection, seed) as node:
            return await resolve_targets(node, TargetOptions((), seed, match), timeout=timeout)

    found = run_async(main)
    if output.json_mode:
        output.json({"seed": seed, "nodes": found})
    else:
        for item in found:
            output.line(item)


@click.command()
@click.argument("targets", nargs=-1, required=True)
@connection_options
@output_option()
def ping(
    *,
    targets: tuple[str, ...],
    conn: ConnectionOptions,
    output: Output,
) -> None:
    """Connect to each node and report pong/pang with the round-trip time.

    Exit code 0 if every node answered, 1 if some did not, 3 if none did.

    \b
    Examples:
      erlbridge ping app1@127.0.0.1 app2@127.0.0.1
      ERLANG_COOKIE=secret erlbridge ping app1@127.0.0.1 --json
    """
    nodes_ = split_nodes(targets)
    connection = make_connection(conn, output)
    timeout = connection.timeout

    async def one(node: Any, target: str) -> dict[str, Any]:
        start = time.perf_counter()
        error = (await connect_all(node, [target], timeout)).get(target)
        if error is None and not await node.ping(target, timeout=timeout):
            error = "pang"
        return {
            "node": target,
            "result": "pang" if error else "pong",
            "seconds": round(time.perf_counter() - start, 6),
            "error": error,
        }

    async def main() -> list[dict[str, Any]]:
        async with open_node(connection, nodes_[0]) as node:
            return list(await asyncio.gather(*(one(node, t) for t in nodes_)))

    rows = run_async(main)
    if output.json_mode:
        output.json({"results": rows})
    else:
        output.table(
            Table(
                ("node", "result", "time", "error"),
                tuple(
                    (r["node"], r["result"], format_duration(r["seconds"]), r["error"])
                    for r in rows
                ),
                status_column="result",
            )
        )
    failed = sum(1 for r in rows if r["result"] != "pong")
    if failed == len(rows):
        raise CannotConnect("no node answered")
    if failed:
        raise SystemExit(EXIT_FAILED)


@click.command()
@click.argument("target", metavar="NODE")
@click.argument("module")
@click.argument("function")
@click.argument("args", required=False)
@click.option(
    "--no-output",
    is_flag=True,
    help="Do not capture what the call prints (by default it is captured and shown).",
)
@connection_options
@output_option()
def rpc(
    *,
    target: str,
    module: str,
    function: str,
    args: str | None,
    no_output: bool,
    conn: ConnectionOptions,
    output: Output,
) -> None:
    """Call MODULE:FUNCTION(ARGS...) on NODE and print the result as Erlang text.

    ARGS is the list of arguments written as one Erlang list: '[1, 10]' calls
    FUNCTION(1, 10); without ARGS FUNCTION is called with no argument. Text the call
    prints (io:format) is captured and shown before the result. Exit code 1 if the call
    raised or returned {badrpc, _}, 3 if NODE cannot be reached.

    \b
    Examples:
      erlbridge rpc app1@127.0.0.1 erlang node
      erlbridge rpc app1@127.0.0.1 lists seq '[1, 10]'
      erlbridge rpc app1@127.0.0.1 io format '["hello ~s~n", ["world"]]'
      erlbridge rpc app1@127.0.0.1 release_handler which_releases --json
    """
    arg_list = _arg_list(args)
    connection = make_connection(conn, output)
    timeout = connection.timeout
    from erlbridge.term import Atom  # noqa: PLC0415

    async def main() -> tuple[Any, str, BaseException | None]:
        async with open_node(connection, target) as node:
            unreachable = await connect_all(node, [target], timeout)
            if unreachable:
                raise CannotConnect(f"{target}: {unreachable[target]}")
            try:
                if no_output:
                    value = await node.rpc(
                        target, Atom(module), Atom(function), arg_list, timeout=timeout
                    )
                    return value, "", None
                result = await node.rpc(
                    target,
                    Atom(module),
                    Atom(function),
                    arg_list,
                    timeout=timeout,
                    capture_output=True,
                )
                return result.value, result.output, None
            except (BadRpc, Timeout, NodeDown) as exc:
                # NodeDown: the connection was lost during the call (it may have halted
                # the node): the call failed, it is no crash of the CLI
                return None, "", exc

    value, printed, error = run_async(main)
    if output.json_mode:
        data: dict[str, Any] = {"node": target, "ok": error is None, "output": printed}
        if error is None:
            data["value"] = value
            data["erlang"] = erlang_text(value)
        else:
            data["error"] = _error_json(error)
        output.json(data)
    else:
        if printed:
            output.console.file.write(printed if printed.endswith("\n") else printed + "\n")
        if error is None:
            output.line(erlang_text(value))
        else:
            output.err.print(f"error: {describe_error(error)}", markup=False, highlight=False)
    if error is not None:
        raise SystemExit(EXIT_FAILED)


_KINDS = (
    (bool, "the atom {}"),
    (int, "the integer {}"),
    (float, "the float {}"),
    (str, "the atom {}"),
    (tuple, "the tuple {}"),
    (bytes, "the binary {}"),
    (dict, "the map {}"),
)


def _arg_list(args: str | None) -> list[Any]:
    """ARGS as the argument list; a usage error (exit 2) that says what is wrong."""
    from erlbridge.term import ErlString, parse_term  # noqa: PLC0415

    if args is None:
        return []
    example = "must be one Erlang list of the arguments, such as '[1, 10]'"
    try:
        value = parse_term(args)
    except ErlbridgeError as exc:
        try:  # "1, 10": the arguments without their brackets
            parse_term(f"[{args}]")
        except ErlbridgeError:
            raise click.BadParameter(f"{example} ({exc})", param_hint="ARGS") from exc
        raise click.BadParameter(
            f"{example}: write '[{args}]'", param_hint="ARGS"
        ) from exc
    if isinstance(value, list):
        return value
    if isinstance(value, ErlString):
        hint = f"the string {args}: to pass it as one argument write '[{args}]'"
    else:
        kind = next((k for t, k in _KINDS if isinstance(value, t)), "the term {}")
        hint = kind.format(args) + f": write '[{args}]' to pass it"
    raise click.BadParameter(f"{example}; this is {hint}", param_hint="ARGS")


def _error_json(error: BaseException) -> dict[str, Any]:
    data: dict[str, Any] = {"type": type(error).__name__, "message": describe_error(error)}
    for attr in ("kind", "reason", "stacktrace", "operation", "timeout"):
        if hasattr(error, attr):
            value = getattr(error, attr)
            data[attr] = value if attr in ("kind", "operation", "timeout") else erlang_text(value)
    return data


@click.command()
@targets_options
@connection_options
@output_option()
def releases(
    *,
    targets: TargetOptions,
    conn: ConnectionOptions,
    output: Output,
) -> None:
    """Show release_handler:which_releases() of every target, one row per release.

    \b
    Examples:
      erlbridge releases -t app1@127.0.0.1,app2@127.0.0.1
      erlbridge releases --seed app1@127.0.0.1 --json
    """
    from erlbridge.term import Atom  # noqa: PLC0415

    connection = make_connection(conn, output)
    timeout = connection.timeout

    async def main() -> list[dict[str, Any]]:
        async with open_node(connection, first_target(targets)) as node:
            nodes_ = await resolve_targets(node, targets, timeout=timeout)
            unreachable = await connect_all(node, nodes_, timeout)
            if len(unreachable) == len(nodes_):
                raise CannotConnect("; ".join(f"{n}: {e}" for n, e in unreachable.items()))
            reachable = [n for n in nodes_ if n not in unreachable]
            outcomes = await node.multicall(
                reachable, Atom("release_handler"), Atom("which_releases"), [], timeout=timeout
            )
            rows: list[dict[str, Any]] = []
            for target in nodes_:
                if target in unreachable:
                    rows.append({"node": target, "error": unreachable[target]})
                    continue
                outcome = outcomes[Atom(target)]
                if not outcome.ok:
                    rows.append({"node": target, "error": describe_error(outcome.error)})
                    continue
                for rel_name, vsn, _apps, status in outcome.value:
                    rows.append(
                        {
                            "node": target,
                            "release": plain(rel_name),
                            "version": plain(vsn),
                            "status": plain(status),
                        }
                    )
            return rows

    rows = run_async(main)
    if output.json_mode:
        output.json({"releases": rows})
    else:
        output.table(
            Table.from_records(
                rows, ("node", "release", "version", "status", "error"), status_column="status"
            )
        )
    if any("error" in r for r in rows):
        raise SystemExit(EXIT_FAILED)
