"""Help texts, usage errors (exit code 2) and option parsing, without any node."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from erlbridge.cli import cli, main
from erlbridge.version import __version__

COMMANDS = [
    ["nodes"],
    ["ping"],
    ["rpc"],
    ["releases"],
    ["readiness"],
    ["script", "check"],
    ["script", "show"],
    ["script", "lint"],
    ["run"],
    ["upgrade"],
    ["downgrade"],
    ["journal", "show"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_examples(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output
    assert "erlbridge " + command[0] in result.output


REPORTING = [c for c in COMMANDS if c != ["script"]]


@pytest.mark.parametrize("command", REPORTING, ids=" ".join)
def test_every_reporting_command_has_json(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert "--json" in result.output


def test_top_level_help_lists_exit_codes_and_cookie() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for word in ("3 cannot connect", "2 usage", "ERLANG_COOKIE", "--cookie-file"):
        assert word in " ".join(result.output.split())


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert __version__ in result.output


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus-command"],
        ["ping"],  # missing NODE
        ["rpc", "a@127.0.0.1", "erlang"],  # missing FUNCTION
        ["upgrade", "2.0.0", "--concurrency", "0", "-t", "a@h"],
        ["journal", "show", "/nonexistent/journal"],
        ["script", "check", "/nonexistent/relup"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    assert main(argv) == 2


def test_no_cookie_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERLANG_COOKIE", raising=False)
    monkeypatch.delenv("ERLBRIDGE_COOKIE_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["ping", "a@127.0.0.1"])
    assert result.exit_code == 2
    assert "no cookie" in result.output


def test_bad_target_name_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERLANG_COOKIE", "x")
    result = CliRunner().invoke(cli, ["ping", "not-a-node-name"])
    assert result.exit_code == 2
    assert "NAME@HOST" in result.output


def test_main_returns_zero_for_help() -> None:
    assert main(["--help"]) == 0
