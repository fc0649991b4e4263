"""Driver commands: ``readiness``, ``run``, ``upgrade``, ``downgrade``.

Each opens erlbridge's hidden node, resolves the targets (``--targets`` or ``--seed``),
builds a :class:`erlbridge.asyncio.driver.Driver` with the policy options and shows
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
    connection_options,
    json_option,
    make_connection,
    open_node,
    resolve_targets,
    run_async,
    split_nodes,
    targets_options,
)
from erlbridge.cli._output import Output
from erlbridge.cli._scriptfile import load_script_for_run
from erlbridge.display import Table, plain, watch_run
from erlbridge.exceptions import BadReleaseTarball, ScriptError

__all__ = ["downgrade", "readiness", "run", "upgrade"]


def timeout_options(function: Any) -> Any:
    """release_handler_1's suspend/code_change timeouts."""
    function = click.option(
        "--code-change-timeout",
        type=float,
        metavar="SECONDS",
        help="release_handler_1 code_change_timeout option.",
    )(function)
    return click.option(
        "--suspend-timeout",
        type=float,
        metavar="SECONDS",
        help="release_handler_1 suspend_timeout option.",
    )(function)


def _push_option(values: tuple[str, ...]) -> dict[str, Path]:
    pushed: dict[str, Path] = {}
    for value in values:
        app, sep, folder = value.partition("=")
        path = Path(folder)
        if not sep or not app or not path.is_dir():
            raise click.BadParameter(f"{value!r}: expected APP=EBIN_DIR", param_hint="--push")
        pushed[app] = path
    return pushed


def policy_options(function: Any) -> Any:
    """Options of the driver's run policy."""
    decorators = [
        click.option(
            "--concurrency",
            type=click.IntRange(min=1),
            metavar="N",
            help="At most N nodes in flight [default: all at once].",
        ),
        click.option(
            "--node-timeout",
            type=float,
            default=120.0,
            show_default=True,
            metavar="SECONDS",
            help="Deadline of each step on each node.",
        ),
        click.option(
            "--overall-timeout",
            type=float,
            metavar="SECONDS",
            help="Deadline of the whole operation [default: none].",
        ),
        click.option(
            "--stop-on-first-failure",
            is_flag=True,
            help="Start no further node after a failure (running ones finish).",
        ),
        click.option(
            "--canary",
            is_flag=True,
            help="Run the first target alone first; the rest only if it succeeded.",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Preflight only, read-only on every node: check_script (run), "
            "check_install_release or, for a tarball, checks without uploading (upgrade).",
        ),
        click.option(
            "--resume",
            is_flag=True,
            help="With --journal: skip the steps an earlier run of the same operation "
            "finished ok (e.g. after an interrupted run).",
        ),
        click.option(
            "--skip-unreachable",
            is_flag=True,
            help="Run on the reachable targets only (default: change nothing if a target "
            "cannot be reached).",
        ),
        click.option(
            "--journal",
            "journal_path",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="FILE",
            help="Append every step to FILE (JSON lines); read it with `journal show`.",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


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


def _print_report(output: Output, report: Any, json_mode: bool) -> None:
    if json_mode:
        output.json(report.to_dict())
        return
    output.table(_report_table(report))
    for outcome in report.outcomes:
        if outcome.output:
            output.line(f"--- output of {outcome.node} ---")
            output.line(outcome.output.rstrip("\n"))


async def _with_driver(
    *,
    conn_opts: dict[str, Any],
    target_opts: dict[str, Any],
    policy: dict[str, Any],
    output: Output,
    title: str | None,
    action: Callable[[Any], Awaitable[Any]],
) -> Any:
    """Open the node, resolve and reach the targets, build the Driver, run ``action``."""
    from erlbridge.asyncio.driver import Driver  # noqa: PLC0415

    conn = make_connection(output=output, **conn_opts)
    first = target_opts["seed"] or next(iter(split_nodes(target_opts["targets"])), None)
    async with open_node(conn, first) as node:
        targets = await resolve_targets(node, timeout=conn.timeout, **target_opts)
        unreachable = await connect_all(node, targets, conn.timeout)
        if len(unreachable) == len(targets):
            raise CannotConnect("; ".join(f"{n}: {e}" for n, e in unreachable.items()))
        for name, error in unreachable.items():
            output.warn(f"{name} is unreachable: {error}")
        if unreachable and title is not None:
            if not policy.pop("skip_unreachable", False):
                # Starting an upgrade on part of a cluster is a decision, not a default:
                # a relup barrier would wait for the missing node.
                if output.json_mode:
                    output.json({"ok": False, "started": False, "unreachable": unreachable})
                output.note("nothing was changed; pass --skip-unreachable to run on the rest")
                raise SystemExit(EXIT_FAILED)
            targets = [t for t in targets if t not in unreachable]
        policy.pop("skip_unreachable", None)
        journal = policy.pop("journal_path", None)
        if policy.get("resume") and journal is None:
            raise click.UsageError("--resume needs --journal FILE (the run to resume)")
        if title is None:  # readiness: no journal to follow, ask reachable nodes only
            reachable = [t for t in targets if t not in unreachable]
            output.note(f"asking {len(reachable)} node(s)…")
            return await action(Driver(node, reachable, **policy)), unreachable
        with contextlib.ExitStack() as stack:
            if journal is None:
                # The progress display reads the journal: use a throw-away one.
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="erlbridge-"))
                journal = Path(tmp) / "run.journal"
            driver = Driver(node, targets, journal=journal, **policy)
            try:
                with output.progress(title, targets) as progress:
                    return await watch_run(action(driver), journal=Path(journal), progress=progress)
            except ScriptError as exc:
                # Refused before anything ran (offline validation, a barrier the policy
                # cannot satisfy): a failed check, not a usage error.
                raise Failed(f"refused, nothing was run: {exc}") from exc


def _finish(output: Output, report: Any, json_mode: bool) -> None:
    _print_report(output, report, json_mode)
    if not report.ok:
        raise SystemExit(EXIT_FAILED)


def _split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    conn = {
        k: kwargs.pop(k) for k in ("name", "cookie_file", "cookie_text", "epmd_port", "timeout")
    }
    targets = {k: kwargs.pop(k) for k in ("targets", "seed", "match_glob")}
    policy_keys = (
        "concurrency",
        "node_timeout",
        "overall_timeout",
        "stop_on_first_failure",
        "canary",
        "dry_run",
        "journal_path",
        "skip_unreachable",
        "resume",
    )
    policy = {k: kwargs.pop(k) for k in policy_keys if k in kwargs}
    return conn, targets, policy


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
@json_option
def readiness(*, json_mode: bool, script_file: Path | None, **kwargs: Any) -> None:
    """Report whether each target is ready for an upgrade.

    Per node: OTP and ERTS versions, which_releases, running applications, modules with
    old code, processes still running old code of modules a script touches (--script),
    and whether the release directory is writable. Exit code 1 if a node is not ready.

    \b
    Examples:
      erlbridge readiness -t app1@127.0.0.1,app2@127.0.0.1
      erlbridge readiness --seed app1@127.0.0.1 --script up.py --json
    """
    output = Output(json_mode=json_mode)
    conn, targets, _ = _split_kwargs(kwargs)
    script = load_script_for_run(script_file, None) if script_file else None

    async def action(driver: Any) -> Any:
        return await driver.readiness(script)

    report = run_async(
        lambda: _with_driver(
            conn_opts=conn,
            target_opts=targets,
            policy={},
            output=output,
            title=None,
            action=action,
        )
    )
    report, unreachable = report
    if json_mode:
        data = report.to_dict()
        data["unreachable"] = unreachable
        data["ready"] = data["ready"] and not unreachable
        output.json(data)
    else:
        # Every target is a row and counts in the caption: the unreachable ones too,
        # as not ready.
        from erlbridge.asyncio.driver import NodeReadiness, ReadinessReport  # noqa: PLC0415

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
@json_option
def run(
    *,
    script_file: Path,
    from_vsn: str | None,
    push: tuple[str, ...],
    suspend_timeout: float | None,
    code_change_timeout: float | None,
    json_mode: bool,
    **kwargs: Any,
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
    output = Output(json_mode=json_mode)
    conn, targets, policy = _split_kwargs(kwargs)
    script = load_script_for_run(script_file, from_vsn)
    options: dict[str, Any] = {}
    pushed = _push_option(push)
    if pushed:
        options["push_code"] = pushed
    if suspend_timeout is not None:
        options["suspend_timeout"] = suspend_timeout
    if code_change_timeout is not None:
        options["code_change_timeout"] = code_change_timeout

    async def action(driver: Any) -> Any:
        return await driver.run_script(script, **options)

    report = run_async(
        lambda: _with_driver(
            conn_opts=conn,
            target_opts=targets,
            policy=policy,
            output=output,
            title="run",
            action=action,
        )
    )
    _finish(output, report, json_mode)


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
@json_option
def upgrade(
    *,
    release: str,
    no_permanent: bool,
    purge: bool,
    suspend_timeout: float | None,
    code_change_timeout: float | None,
    json_mode: bool,
    **kwargs: Any,
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
    output = Output(json_mode=json_mode)
    conn, targets, policy = _split_kwargs(kwargs)
    source = _release_source(release)

    async def action(driver: Any) -> Any:
        return await driver.upgrade(
            source,
            permanent=not no_permanent,
            purge=purge,
            suspend_timeout=suspend_timeout,
            code_change_timeout=code_change_timeout,
        )

    report = run_async(
        lambda: _with_driver(
            conn_opts=conn,
            target_opts=targets,
            policy=policy,
            output=output,
            title=f"upgrade {release}",
            action=action,
        )
    )
    _finish(output, report, json_mode)


def _release_source(release: str) -> Any:
    """A checked :class:`Tarball` for a file path, else the version string.

    Anything that names an existing file, or ends like a tarball, is a tarball: it is
    read and checked here, so a file release_handler could not unpack (not gzip, no
    ``releases/<Name>.rel``) is a usage error before anything is uploaded."""
    from erlbridge.asyncio.driver import Tarball  # noqa: PLC0415 (keep --help fast)

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
@json_option
def downgrade(
    *,
    vsn: str,
    no_permanent: bool,
    suspend_timeout: float | None,
    code_change_timeout: float | None,
    json_mode: bool,
    **kwargs: Any,
) -> None:
    """Downgrade every target to the installed release VSN (runs the relup's down-script).

    \b
    Examples:
      erlbridge downgrade 1.0.0 -t app1@127.0.0.1,app2@127.0.0.1
      erlbridge downgrade 1.0.0 --seed app1@127.0.0.1 --json
    """
    output = Output(json_mode=json_mode)
    conn, targets, policy = _split_kwargs(kwargs)

    async def action(driver: Any) -> Any:
        return await driver.downgrade(
            vsn,
            permanent=not no_permanent,
            suspend_timeout=suspend_timeout,
            code_change_timeout=code_change_timeout,
        )

    report = run_async(
        lambda: _with_driver(
            conn_opts=conn,
            target_opts=targets,
            policy=policy,
            output=output,
            title=f"downgrade {vsn}",
            action=action,
        )
    )
    _finish(output, report, json_mode)
