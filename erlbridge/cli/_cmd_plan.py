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
@json_option
def plan(*, old: Path, new: Path, tarball: Path | None, write_new: bool,
         appup_files: tuple[str, ...], erl_image: str | None, check: bool, json_mode: bool,
         **kwargs: Any) -> None:
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

    output = Output(json_mode=json_mode)
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
        if json_mode:
            output.json({"valid": False, "reason": " ".join(str(exc).split())})
        raise Failed(" ".join(str(exc).split())) from exc
    except OSError as exc:
        raise Failed(f"cannot write: {exc}") from exc
    report = None
    if check:
        report = _check(the_plan, output, kwargs)
    if json_mode:
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


def _check(the_plan: Any, output: Output, kwargs: dict[str, Any]) -> Any:
    conn_keys = ("name", "cookie_file", "cookie_text", "epmd_port", "timeout")
    conn = make_connection(output=output, **{k: kwargs[k] for k in conn_keys})
    target_opts = {k: kwargs[k] for k in ("targets", "seed", "match_glob")}
    if not target_opts["seed"] and not target_opts["targets"]:
        raise click.UsageError("--check needs --seed NODE or --targets NODES")

    async def main() -> Any:
        from erlbridge.asyncio.driver import Driver  # noqa: PLC0415

        first = target_opts["seed"] or next(iter(split_nodes(target_opts["targets"])), None)
        async with open_node(conn, first) as node:
            targets = await resolve_targets(node, timeout=conn.timeout, **target_opts)
            output.note(f"checking the plan on {len(targets)} node(s)…")
            return await Driver(node, targets, node_timeout=max(conn.timeout, 30.0)).check_plan(
                the_plan)

    return run_async(main)
