"""The ``erlbridge`` click group: registers every command and maps exit codes."""

from __future__ import annotations

import logging
import sys

import click

from erlbridge.cli._cmd_cluster import nodes, ping, releases, rpc
from erlbridge.cli._cmd_driver import downgrade, readiness, run, upgrade
from erlbridge.cli._cmd_images import images
from erlbridge.cli._cmd_journal import journal
from erlbridge.cli._cmd_plan import plan
from erlbridge.cli._cmd_script import script
from erlbridge.version import __version__

__all__ = ["cli", "main"]

EPILOG = """\b
Exit codes: 0 all ok, 1 some node failed (or a check found errors),
            2 usage error, 3 cannot connect.
Cookie:     --cookie-file FILE, else $ERLANG_COOKIE, else ~/.erlang.cookie
            (--cookie exists but exposes the cookie in the process list).

\b
Examples:
  erlbridge ping app1@127.0.0.1
  erlbridge rpc app1@127.0.0.1 lists seq '[1, 5]'
  erlbridge nodes app1@127.0.0.1
  erlbridge releases --seed app1@127.0.0.1
  erlbridge readiness -t app1@127.0.0.1,app2@127.0.0.1
  erlbridge script check _build/default/rel/app/releases/2.0.0/relup
  erlbridge run patch.py -t app1@127.0.0.1 --dry-run
  erlbridge upgrade app-2.0.0.tar.gz --seed app1@127.0.0.1 --journal up.journal
  erlbridge journal show up.journal
  erlbridge plan old/rel/app new/rel/app --tarball app-2.0.0.tar.gz
"""


@click.group(
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="erlbridge")
@click.option("-v", "--verbose", count=True, help="Log to stderr (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Talk to an Erlang/OTP cluster from the shell and drive hot code upgrades.

    erlbridge joins the cluster as a hidden node (it needs the cluster's cookie), runs
    calls on the nodes, and drives release_handler upgrades on many nodes at once.
    """
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            stream=sys.stderr,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
        )


for command in (nodes, ping, rpc, releases, readiness, script, run, upgrade, downgrade, journal,
                images):
    cli.add_command(command)
cli.add_command(plan)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (or exits with) the exit code. Usage errors exit with 2."""
    try:
        cli.main(args=argv, prog_name="erlbridge", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            if argv is None:
                raise
            return code
        raise
    return 0
