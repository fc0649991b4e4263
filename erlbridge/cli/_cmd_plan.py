"""``plan OLD NEW``: plan an upgrade from two builds of a release (appups, relup, tarball).

Offline unless ``--check``: then the plan is also checked against the live cluster
(``Driver.check_plan``), changing nothing there. Exit 0 when the plan is valid (warnings
allowed) and, with ``--check``, every node passed; 1 with a one-line reason otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from erlbridge.cli._common import (
    EXIT_FAILED,
    Failed,
    first_target,
    make_connection,
    open_node,
    resolve_targets,
    run_async,
)
from erlbridge.cli._options import (
    ConnectionOptions,
    TargetOptions,
    connection_options,
    output_option,
    targets_options,
)
from erlbridge.cli._output import Output
from erlbridge.display import Table

__all__ = ["plan"]

_BUILD = click.Path(exists=True, path_type=Path)


def _appup_option(values: tuple[str, ...]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for value in values:
        app, sep, file = value.partition("=")
        if not sep or not app or not Path(file).is_file():
            raise click.BadParameter(f"{value!r}: expected APP=PATH to an appup file",
                                     param_hint="--appup")
        out[app] = Path(file)
    return out


@click.command()
@click.argument("old", type=_BUILD)
@click.argument("new", type=_BUILD)
@click.option("--tarball", type=click.Path(dir_okay=False, path_type=Path), metavar="OUT",
              help="Write the NEW release as an upgrade tarball OUT.tar.gz.")
@click.option("--write", "write_new", is_flag=True,
              help="Write the appups and the relup into the NEW release directory.")
@click.option("--appup", "appup_files", multiple=True, metavar="APP=PATH",
              help="Use this appup for APP (repeatable); counted as shipped.")
@click.option("--erl-image", metavar="IMAGE",
              help="Run systools in this docker image (default: the local erl when it is "
              "the release's OTP, else erlbridge-base:otp<N>).")
@click.option("--check", is_flag=True,
              help="Also check the plan against the live targets (--seed/--targets).")
@targets_options
@connection_options
@output_option()
def plan(*, old: Path, new: Path, tarball: Path | None, write_new: bool,
         appup_files: tuple[str, ...], erl_image: str | None, check: bool,
         targets: TargetOptions, conn: ConnectionOptions, output: Output) -> None:
    """Plan the upgrade from build OLD to build NEW of a release.

    OLD and NEW are relx release directories (_build/<profile>/rel/<name>) or release
    tarballs. Changed applications get the appup NEW ships for the change, else a
    generated one; the relup comes from systools:make_relup.

    \b
    Examples:
      erlbridge plan old/_build/prod/rel/shop _build/prod/rel/shop --tarball shop-2.tar.gz
      erlbridge plan shop-1.0.0.tar.gz shop-2.0.0.tar.gz --json
      erlbridge plan OLD NEW --check --seed shop1@10.0.0.5
    """
    from erlbridge.exceptions import PlanError  # noqa: PLC0415 (keep --help fast)
    from erlbridge.plan import ErlRunner, plan_upgrade  # noqa: PLC0415

    overrides = _appup_option(appup_files)
    if write_new and not new.is_dir():
        raise click.UsageError("--write needs NEW to be a release directory")
    if tarball is not None and not tarball.name.endswith(".tar.gz"):
        raise click.BadParameter("must end in .tar.gz", param_hint="--tarball")
    try:
        the_plan = plan_upgrade(old, new, appups=overrides,
                                erl=ErlRunner.docker(erl_image) if erl_image else None)
        written = [str(the_plan.write_tarball(tarball))] if tarball is not None else []
        if write_new:
            written.append(str(the_plan.write()))
    except PlanError as exc:
        if output.json_mode:
            output.json({"valid": False, "reason": " ".join(str(exc).split())})
        raise Failed(" ".join(str(exc).split())) from exc
    except OSError as exc:
        raise Failed(f"cannot write: {exc}") from exc
    report = None
    if check:
        report = _check(the_plan, output, conn, targets)
    if output.json_mode:
        data = the_plan.to_dict()
        data["written"] = written
        if report is not None:
            data["check"] = report.to_dict()
        output.json(data)
    else:
        output.line(the_plan.to_text())
        for path in written:
            output.line(f"wrote {path}")
        if report is not None:
            output.table(Table(report.HEADERS, tuple(tuple(r) for r in report.rows()),
                               report.caption(), "ok"))
    if report is not None and not report.ok:
        raise SystemExit(EXIT_FAILED)


def _check(the_plan: Any, output: Output, conn: ConnectionOptions,
           targets: TargetOptions) -> Any:
    connection = make_connection(conn, output)
    if not targets.seed and not targets.targets:
        raise click.UsageError("--check needs --seed NODE or --targets NODES")

    async def main() -> Any:
        from erlbridge.driver import Driver  # noqa: PLC0415

        async with open_node(connection, first_target(targets)) as node:
            nodes = await resolve_targets(node, targets, timeout=connection.timeout)
            output.note(f"checking the plan on {len(nodes)} node(s)…")
            return await Driver(
                node, nodes, node_timeout=max(connection.timeout, 30.0)
            ).check_plan(the_plan)

    return run_async(main)
