"""Help texts, usage errors (exit code 2) and option parsing, without any node."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from erlbridge.cli import cli, main
from erlbridge.cli._common import Connection
from erlbridge.cli._cookie import Cookie
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


def test_rpc_help_shows_no_literal_default() -> None:
    result = CliRunner().invoke(cli, ["rpc", "--help"])
    assert result.exit_code == 0
    assert "[]" not in result.output and "``" not in result.output
    assert "'[1, 10]' calls" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ("5", "this is the integer 5: write '[5]'"),
        ("foo", "this is the atom foo: write '[foo]'"),
        ("{a, b}", "this is the tuple {a, b}: write '[{a, b}]'"),
        ('"abc"', "this is the string \"abc\": to pass it as one argument write '[\"abc\"]'"),
        ("1, 5", "write '[1, 5]'"),
        ("[1,", "expected a term"),
    ],
)
def test_rpc_args_that_are_not_a_list_say_so(args: str, says: str) -> None:
    # refused before any cookie or node is needed
    result = CliRunner().invoke(cli, ["rpc", "a@127.0.0.1", "m", "f", args])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "must be one Erlang list of the arguments" in text
    assert says in text, text
    assert "Atom(" not in text and "ErlString(" not in text


@pytest.mark.parametrize(
    "content",
    [b"not gzip at all", b"\x1f\x8b\x08\x00\x00\x00\x00\x00 cut short", b""],
    ids=["text", "broken-gzip", "empty"],
)
def test_upgrade_refuses_a_file_that_is_no_release_tarball(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    # no cookie, no node: the file is checked before anything else
    monkeypatch.delenv("ERLANG_COOKIE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    bogus = tmp_path / "app-2.0.0.tar.gz"
    bogus.write_bytes(content)
    result = CliRunner().invoke(cli, ["upgrade", str(bogus), "-t", "a@127.0.0.1"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("erlbridge: not a release tarball, nothing was uploaded: ")
    assert str(bogus) in lines[0]
    missing = CliRunner().invoke(cli, ["upgrade", str(tmp_path / "gone.tar.gz"), "-t", "a@h"])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_default_node_name_keeps_a_local_target_host() -> None:
    conn = Connection(None, Cookie("x", "test"), None, 5.0)
    assert conn.node_name("a@127.0.0.1").endswith("@127.0.0.1")
    assert conn.node_name("a@127.0.0.1:4370").endswith("@127.0.0.1")
    assert conn.node_name(None).endswith("@127.0.0.1")
    assert Connection("me@h", Cookie("x", "test"), None, 5.0).node_name("a@b") == "me@h"
