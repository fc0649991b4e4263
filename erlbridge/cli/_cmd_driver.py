"""Driver commands: ``readiness``, ``run``, ``upgrade``, ``downgrade``.

Each opens erlbridge's hidden node, resolves the targets (``--targets`` or ``--seed``),
builds a :class:`erlbridge.driver.Driver` with the policy options and shows
per-node progress while it works. The final report is a table (or ``--json``); the exit
code is 0 when every node is ok, 1 when some node failed, 3 when no target was reachable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import click

from erlbridge.cli._common import (
    EXIT_FAILED,
    BadInput,
    CannotConnect,
    Failed,
    connect_all,
    first_target,
    make_connection,
    open_node,
    resolve_targets,
    run_async,
)
from erlbridge.cli._options import (
    ConnectionOptions,
    PolicyOptions,
    TargetOptions,
    TimeoutOptions,
    connection_options,
    output_option,
    policy_options,
    targets_options,
    timeout_options,
)
from erlbridge.cli._output import Output
from erlbridge.cli._scriptfile import load_script_for_run
from erlbridge.display import Table, plain, watch_run
from erlbridge.exceptions import BadReleaseTarball, ScriptError

__all__ = ["downgrade", "readiness", "run", "upgrade"]


def _push_option(values: tuple[str, ...]) -> dict[str, Path]:
    pushed: dict[str, Path] = {}
    for value in values:
        app, sep, folder = value.partition("=")
        path = Path(folder)
        if not sep or not app or not path.is_dir():
            raise click.BadParameter(f"{value!r}: expected APP=EBIN_DIR", param_hint="--push")
        pushed[app] = path
    return pushed


def _report_table(report: Any) -> Table:
    rows = []
    for outcome in report.outcomes:
        detail = str(outcome.error) if outcome.error is not None else _short(outcome.value)
        if outcome.note:
            detail = f"{detail} [{outcome.note}]" if detail else outcome.note
        rows.append(
            (
                plain(outcome.node),
                str(outcome.status),
                outcome.step,
                f"{outcome.duration:.2f} s",
                detail,
            )
        )
    caption = report._caption() if hasattr(report, "_caption") else report.operation
    return Table(
        ("node", "status", "step", "time", "value / error"), tuple(rows), caption, "status"
    )


def _short(value: Any, width: int = 70) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping):
        # the driver's own summaries (e.g. a dry run's checks): "key: a, b; key: value"
        return _short("; ".join(
            f"{k}: {', '.join(map(str, v)) if isinstance(v, Mapping) else plain(v)}"
            for k, v in value.items()), 160)
    try:
        text = plain(value)
    except Exception:  # a value the printer cannot render still deserves a cell
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_report(output: Output, report: Any) -> None:
    if output.json_mode:
        output.json(report.to_dict())
        return
    output.table(_report_table(report))
    for outcome in report.outcomes:
        if outcome.output:
            output.line(f"--- output of {outcome.node} ---")
            output.line(outcome.output.rstrip("\n"))


async def _with_driver(
    *,
    conn: ConnectionOptions,
    targets: TargetOptions,
    policy: PolicyOptions | None,
    output: Output,
    title: str | None,
    action: Callable[[Any], Awaitable[Any]],
) -> Any:
    """Open the node, resolve and reach the targets, build the Driver, run ``action``.

    ``policy`` is ``None`` for readiness (``title`` ``None`` too): no policy, no journal.
    """
    from erlbridge.driver import Driver  # noqa: PLC0415

    connection = make_connection(conn, output)
    async with open_node(connection, first_target(targets)) as node:
        nodes = await resolve_targets(node, targets, timeout=connection.timeout)
        unreachable = await connect_all(node, nodes, connection.timeout)
        if len(unreachable) == len(nodes):
            raise CannotConnect("; ".join(f"{n}: {e}" for n, e in unreachable.items()))
        for name, error in unreachable.items():
            output.warn(f"{name} is unreachable: {error}")
        if unreachable and title is not None:
            if policy is None or not policy.skip_unreachable:
                # Starting an upgrade on part of a cluster is a decision, not a default:
                # a relup barrier would wait for the missing node.
                if output.json_mode:
                    output.json({"ok": False, "started": False, "unreachable": unreachable})
                output.note("nothing was changed; pass --skip-unreachable to run on the rest")
                raise SystemExit(EXIT_FAILED)
            nodes = [t for t in nodes if t not in unreachable]
        journal = policy.journal_path if policy is not None else None
        if policy is not None and policy.resume and journal is None:
            raise click.UsageError("--resume needs --journal FILE (the run to resume)")
        driver_kwargs = policy.driver_kwargs() if policy is not None else {}
        if title is None:  # readiness: no journal to follow, ask reachable nodes only
            reachable = [t for t in nodes if t not in unreachable]
            output.note(f"asking {len(reachable)} node(s)…")
            return await action(Driver(node, reachable, **driver_kwargs)), unreachable
        with contextlib.ExitStack() as stack:
            if journal is None:
                # The progress display reads the journal: use a throw-away one.
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="erlbridge-"))
                journal = Path(tmp) / "run.journal"
            driver = Driver(node, nodes, journal=journal, **driver_kwargs)
            try:
                with output.progress(title, nodes) as progress:
                    return await watch_run(action(driver), journal=Path(journal), progress=progress)
            except ScriptError as exc:
                # Refused before anything ran (offline validation, a barrier the policy
                # cannot satisfy): a failed check, not a usage error.
                raise Failed(f"refused, nothing was run: {exc}") from exc


def _finish(output: Output, report: Any) -> None:
    _print_report(output, report)
    if not report.ok:
        raise SystemExit(EXIT_FAILED)


@click.command()
@click.option(
    "--script",
    "script_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also report processes running old code of the modules FILE touches.",
)
@targets_options
@connection_options
@output_option()
def readiness(
    *,
    script_file: Path | None,
    targets: TargetOptions,
    conn: ConnectionOptions,
    output: Output,
) -> None:
    """Report whether each target is ready for an upgrade.

    Per node: OTP and ERTS versions, which_releases, running applications, modules with
    old code, processes still running old code of modules a script touches (--script),
    and whether the release directory is writable. Exit code 1 if a node is not ready.

    \b
    Examples:
      erlbridge readiness -t app1@127.0.0.1,app2@127.0.0.1
      erlbridge readiness --seed app1@127.0.0.1 --script up.py --json
    """
    script = load_script_for_run(script_file, None) if script_file else None

    async def action(driver: Any) -> Any:
        return await driver.readiness(script)

    report = run_async(
        lambda: _with_driver(
            conn=conn,
            targets=targets,
            policy=None,
            output=output,
            title=None,
            action=action,
        )
    )
    report, unreachable = report
    if output.json_mode:
        data = report.to_dict()
        data["unreachable"] = unreachable
        data["ready"] = data["ready"] and not unreachable
        output.json(data)
    else:
        # Every target is a row and counts in the caption: the unreachable ones too,
        # as not ready.
        from erlbridge.driver import NodeReadiness, ReadinessReport  # noqa: PLC0415

        shown = ReadinessReport(
            report.nodes + tuple(
                NodeReadiness(name, error=f"unreachable: {why}")
                for name, why in unreachable.items()
            ),
            report.touched_modules,
        )
        rows = tuple(tuple(r) for r in shown._rows())
        output.table(Table(shown._HEADERS, rows, shown._caption(), "ready"))
        for item in report.nodes:
            for note in item.notes:
                output.note(f"{item.node}: {note}")
    if not report.ready or unreachable:
        raise SystemExit(EXIT_FAILED)


@click.command()
@click.argument(
    "script_file", metavar="SCRIPT", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--from",
    "from_vsn",
    metavar="VSN",
    help="For a relup file: take the up-script from VSN.",
)
@click.option(
    "--push",
    "push",
    multiple=True,
    metavar="APP=EBIN_DIR",
    help="Write the .beam files of local EBIN_DIR to each target before the run, as "
    "APP's code (for code that is not on the targets' disks). Repeatable.",
)
@timeout_options
@policy_options
@targets_options
@connection_options
@output_option()
def run(
    *,
    script_file: Path,
    from_vsn: str | None,
    push: tuple[str, ...],
    timeouts: TimeoutOptions,
    policy: PolicyOptions,
    targets: TargetOptions,
    conn: ConnectionOptions,
    output: Output,
) -> None:
    """Run SCRIPT on every target in direct mode (release_handler_1:eval_script/5).

    SCRIPT is a Python file defining `script` (an erlbridge.upgrade.Script) or a
    `build_script()` function, an Erlang-text file holding an instruction list, or a
    relup file with --from VSN. A preflight (offline validation and
    release_handler_1:check_script/2) runs on every target first; only if all pass is the
    script evaluated. sync_nodes barriers are coordinated by erlbridge's node.

    \b
    Examples:
      erlbridge run patch.py -t app1@127.0.0.1,app2@127.0.0.1
      erlbridge run patch.script --seed app1@127.0.0.1 --canary --journal run.journal
      erlbridge run patch.py -t app1@127.0.0.1 --dry-run --json
    """
    script = load_script_for_run(script_file, from_vsn)
    options: dict[str, Any] = {}
    pushed = _push_option(push)
    if pushed:
        options["push_code"] = pushed
    options.update(timeouts.given())

    async def action(driver: Any) -> Any:
        return await driver.run_script(script, **options)

    report = run_async(
        lambda: _with_driver(
            conn=conn,
            targets=targets,
            policy=policy,
            output=output,
            title="run",
            action=action,
        )
    )
    _finish(output, report)


@click.command()
@click.argument("release", metavar="TARBALL|VSN")
@click.option(
    "--no-permanent", is_flag=True, help="Install but do not make the new version permanent."
)
@click.option("--purge", is_flag=True, help="check_install_release with [purge] (old code purged).")
@timeout_options
@policy_options
@targets_options
@connection_options
@output_option()
def upgrade(
    *,
    release: str,
    no_permanent: bool,
    purge: bool,
    timeouts: TimeoutOptions,
    policy: PolicyOptions,
    targets: TargetOptions,
    conn: ConnectionOptions,
    output: Output,
) -> None:
    """Upgrade every target to a release (release mode, through release_handler).

    With a TARBALL (NAME-VSN.tar.gz built by rebar3/relx), erlbridge checks it here (a
    file that is no release tarball is refused, exit 2), uploads it to each target's
    releases/ directory and unpacks it; with a VSN the release must already be unpacked
    there. Then check_install on every node (nothing changes unless all pass), install
    (the relup runs inside release_handler, so sync_nodes barriers work), and
    make_permanent. --dry-run with a TARBALL uploads nothing: it checks read-only what
    the run needs (relup entry for the running version, writable dirs, disk room, old
    code) and reports which checks ran on each node.

    \b
    Examples:
      erlbridge upgrade _build/prod/rel/app/app-2.0.0.tar.gz -t app1@127.0.0.1,app2@127.0.0.1
      erlbridge upgrade 2.0.0 --seed app1@127.0.0.1 --canary --journal up.journal
      erlbridge upgrade app-2.0.0.tar.gz -t app1@127.0.0.1 --dry-run --json
    """
    source = _release_source(release)

    async def action(driver: Any) -> Any:
        return await driver.upgrade(
            source,
            permanent=not no_permanent,
            purge=purge,
            suspend_timeout=timeouts.suspend_timeout,
            code_change_timeout=timeouts.code_change_timeout,
        )

    report = run_async(
        lambda: _with_driver(
            conn=conn,
            targets=targets,
            policy=policy,
            output=output,
            title=f"upgrade {release}",
            action=action,
        )
    )
    _finish(output, report)


def _release_source(release: str) -> Any:
    """A checked :class:`Tarball` for a file path, else the version string.

    Anything that names an existing file, or ends like a tarball, is a tarball: it is
    read and checked here, so a file release_handler could not unpack (not gzip, no
    ``releases/<Name>.rel``) is a usage error before anything is uploaded."""
    from erlbridge.driver import Tarball  # noqa: PLC0415 (keep --help fast)

    path = Path(release)
    if not path.is_file():
        if release.endswith((".tar.gz", ".tgz")):
            raise BadInput(f"no such file: {release}")
        if os.sep in release:
            raise BadInput(f"{release}: neither a file nor a release version")
        return release
    try:
        return Tarball.load(path)
    except BadReleaseTarball as exc:
        raise BadInput(f"not a release tarball, nothing was uploaded: {exc}") from exc
    except OSError as exc:
        raise BadInput(f"cannot read {release}: {exc.strerror or exc}") from exc


@click.command()
@click.argument("vsn")
@click.option(
    "--no-permanent", is_flag=True, help="Install the old version but do not make it permanent."
)
@timeout_options
@policy_options
@targets_options
@connection_options
@output_option()
def downgrade(
    *,
    vsn: str,
    no_permanent: bool,
    timeouts: TimeoutOptions,
    policy: PolicyOptions,
    targets: TargetOptions,
    conn: ConnectionOptions,
    output: Output,
) -> None:
    """Downgrade every target to the installed release VSN (runs the relup's down-script).

    \b
    Examples:
      erlbridge downgrade 1.0.0 -t app1@127.0.0.1,app2@127.0.0.1
      erlbridge downgrade 1.0.0 --seed app1@127.0.0.1 --json
    """

    async def action(driver: Any) -> Any:
        return await driver.downgrade(
            vsn,
            permanent=not no_permanent,
            suspend_timeout=timeouts.suspend_timeout,
            code_change_timeout=timeouts.code_change_timeout,
        )

    report = run_async(
        lambda: _with_driver(
            conn=conn,
            targets=targets,
            policy=policy,
            output=output,
            title=f"downgrade {vsn}",
            action=action,
        )
    )
    _finish(output, report)
