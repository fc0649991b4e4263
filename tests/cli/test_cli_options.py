"""Every command receives each option group as one object, never the group's raw options."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from erlbridge.cli import cli
from erlbridge.cli._options import (
    OPTION_GROUPS,
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


def _commands(
    command: click.Command, path: str = "erlbridge"
) -> Iterator[tuple[str, click.Command]]:
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, f"{path} {name}")
    else:
        yield path, command


COMMANDS = list(_commands(cli))


def test_groups_are_known() -> None:
    assert set(OPTION_GROUPS) == {"conn", "targets", "policy", "timeouts", "output"}


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_takes_option_groups_as_objects(path: str, command: click.Command) -> None:
    assert command.callback is not None
    # follows the group decorators' functools.wraps back to the function as written
    parameters = set(inspect.signature(command.callback).parameters)
    options = {p.name for p in command.params if isinstance(p, click.Option)} - {"help"}
    for group, names in OPTION_GROUPS.items():
        if not names & options:
            continue
        assert names <= options, f"{path}: part of the {group} group"
        assert group in parameters, f"{path}: does not take {group}"
        raw = (names - {group}) & parameters  # the targets object shares --targets' name
        assert not raw, f"{path}: takes raw {sorted(raw)}"


def test_every_reporting_command_gets_an_output() -> None:
    without = {path for path, command in COMMANDS if "output" not in _parameters(command)}
    assert without == {"erlbridge images build"}


def _parameters(command: click.Command) -> set[str]:
    assert command.callback is not None
    return set(inspect.signature(command.callback).parameters)


def test_group_decorators_build_the_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("ERLBRIDGE_NAME", "ERLBRIDGE_COOKIE_FILE", "ERL_EPMD_PORT", "ERLBRIDGE_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    seen: dict[str, object] = {}

    @click.command()
    @click.option("--own", is_flag=True)
    @timeout_options
    @policy_options
    @targets_options
    @connection_options
    @output_option()
    def probe(**kwargs: object) -> None:
        seen.update(kwargs)

    journal = tmp_path / "j"
    probe.main(
        [
            "-t",
            "a@h,b@h",
            "--seed",
            "a@h",
            "--match",
            "a*",
            "--cookie",
            "c",
            "--timeout",
            "3",
            "--canary",
            "--journal",
            str(journal),
            "--suspend-timeout",
            "5",
            "--json",
            "--own",
        ],
        standalone_mode=False,
    )
    assert set(seen) == {"own", "timeouts", "policy", "targets", "conn", "output"}
    assert seen["targets"] == TargetOptions(("a@h,b@h",), "a@h", "a*")
    assert seen["conn"] == ConnectionOptions(None, None, "c", None, 3.0)
    assert seen["timeouts"] == TimeoutOptions(5.0, None)
    policy = seen["policy"]
    assert isinstance(policy, PolicyOptions)
    assert policy.canary and policy.journal_path == journal and policy.node_timeout == 120.0
    assert "journal_path" not in policy.driver_kwargs()
    assert "skip_unreachable" not in policy.driver_kwargs()
    output = seen["output"]
    assert isinstance(output, Output) and output.json_mode
