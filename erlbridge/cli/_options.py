"""Option groups: each group's click options reach the command as one typed object.

A group decorator adds the group's options to the command and, when it runs, takes their
values out of the keyword arguments and passes one object instead (``conn``, ``targets``,
``policy``, ``timeouts``, ``output``), so every command receives its options the same way.
The objects only hold what was typed: reading the cookie or resolving the targets happens
in the command, where it did before (its errors keep their order).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import click

from erlbridge.cli._output import Output

__all__ = [
    "OPTION_GROUPS",
    "ConnectionOptions",
    "PolicyOptions",
    "TargetOptions",
    "TimeoutOptions",
    "connection_options",
    "output_option",
    "policy_options",
    "targets_options",
    "timeout_options",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Parameter name of each group's object -> the names of the options it collects.
OPTION_GROUPS: dict[str, frozenset[str]] = {}


def _option_group(
    parameter: str,
    build: Callable[..., Any],
    options: list[Callable[[Any], Any]],
) -> Callable[[F], F]:
    """A decorator adding ``options`` and passing ``build(**their values)`` as ``parameter``."""
    names = frozenset(_dest(option) for option in options)
    OPTION_GROUPS[parameter] = names

    def decorator(function: F) -> F:
        @functools.wraps(function)
        def command(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in names}
            return function(*args, **kwargs, **{parameter: build(**values)})

        # options of decorators applied earlier stay on the command, in their order
        command.__click_params__ = list(getattr(function, "__click_params__", []))  # type: ignore[attr-defined]
        decorated: Any = command
        for option in reversed(options):
            decorated = option(decorated)
        return decorated  # type: ignore[no-any-return]

    return decorator


def _dest(option: Callable[[Any], Any]) -> str:
    """The keyword name under which click passes ``option``'s value."""
    probe: Any = option(lambda: None)
    return str(probe.__click_params__[0].name)


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """How to start the CLI's own node, as typed (the cookie is read by ``make_connection``)."""

    name: str | None
    cookie_file: Path | None
    cookie_text: str | None
    epmd_port: int | None
    timeout: float


@dataclass(frozen=True, slots=True)
class TargetOptions:
    """Which nodes a command works on: ``--targets`` values, ``--seed``, ``--match``."""

    targets: tuple[str, ...]
    seed: str | None
    match_glob: str | None


@dataclass(frozen=True, slots=True)
class PolicyOptions:
    """The driver's run policy and what the CLI does around it (journal, unreachable)."""

    concurrency: int | None
    node_timeout: float
    overall_timeout: float | None
    stop_on_first_failure: bool
    canary: bool
    dry_run: bool
    resume: bool
    skip_unreachable: bool
    journal_path: Path | None

    def driver_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``Driver`` this policy sets (not journal/unreachable)."""
        skip = ("skip_unreachable", "journal_path")
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


@dataclass(frozen=True, slots=True)
class TimeoutOptions:
    """release_handler_1's suspend/code_change timeouts (``None``: its default)."""

    suspend_timeout: float | None
    code_change_timeout: float | None

    def given(self) -> dict[str, float]:
        """Only the timeouts that were given, as keyword arguments."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


JSON_HELP = "Print one JSON document on stdout (progress still goes to stderr)."


def output_option(help_text: str = JSON_HELP) -> Callable[[F], F]:
    """``--json``: the command gets ``output``, an :class:`Output` in the chosen mode."""
    return _option_group(
        "output",
        lambda json_mode: Output(json_mode=json_mode),
        [click.option("--json", "json_mode", is_flag=True, help=help_text)],
    )


connection_options = _option_group(
    "conn",
    ConnectionOptions,
    [
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
    ],
)
"""Options for the CLI's own node: name, cookie, EPMD port, timeout (``conn``)."""

targets_options = _option_group(
    "targets",
    TargetOptions,
    [
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
    ],
)
"""``--targets``/``--seed``/``--match``: which nodes a command works on (``targets``)."""

timeout_options = _option_group(
    "timeouts",
    TimeoutOptions,
    [
        click.option(
            "--suspend-timeout",
            type=float,
            metavar="SECONDS",
            help="release_handler_1 suspend_timeout option.",
        ),
        click.option(
            "--code-change-timeout",
            type=float,
            metavar="SECONDS",
            help="release_handler_1 code_change_timeout option.",
        ),
    ],
)
"""release_handler_1's suspend/code_change timeouts (``timeouts``)."""

policy_options = _option_group(
    "policy",
    PolicyOptions,
    [
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
    ],
)
"""Options of the driver's run policy (``policy``)."""
