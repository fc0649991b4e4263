"""``erlbridge script check|show|lint`` on relup, appup, Erlang-text and Python files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from erlbridge.cli import cli

ROOT = Path(__file__).resolve().parents[2]
APPUP = ROOT / "erlang_fixtures" / "apps" / "2.0.0" / "fixture" / "ebin" / "fixture.appup"

RELUP = """%% coding: utf-8
{"2",
 [{"1",[],
   [{load_object_code,{demo,"2",[demo_srv]}},
    point_of_no_return,
    {sync_nodes,demo_up,[a@h,b@h]},
    {suspend,[demo_srv]},
    {load,{demo_srv,brutal_purge,brutal_purge}},
    {code_change,up,[{demo_srv,[]}]},
    {resume,[demo_srv]}]}],
 [{"1",[],
   [{load_object_code,{demo,"1",[demo_srv]}},
    point_of_no_return,
    {load,{demo_srv,brutal_purge,brutal_purge}}]}]}.
"""

BAD = (
    '[{load_object_code,{demo,"2",[demo]}}, {suspend,[demo]}, point_of_no_return,'
    ' {load_object_code,{demo,"2",[x]}}].'
)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture
def relup(tmp_path: Path) -> Path:
    path = tmp_path / "relup"
    path.write_text(RELUP)
    return path


def test_check_valid_relup(relup: Path) -> None:
    code, out = invoke("script", "check", str(relup))
    assert code == 0, out
    assert "(relup): OK, 0 error(s)" in out


def test_show_relup_lists_both_directions(relup: Path) -> None:
    code, out = invoke("script", "show", str(relup), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["kind"] == "relup"
    labels = [s["label"] for s in data["scripts"]]
    assert labels == ["up from 1", "down to 1"]
    up = data["scripts"][0]["instructions"]
    assert up[2] == {"type": "SyncNodes", "erlang": "{sync_nodes,demo_up,[a@h,b@h]}"}


def test_show_erlang_round_trips(relup: Path, tmp_path: Path) -> None:
    code, out = invoke("script", "show", str(relup), "--erlang")
    assert code == 0
    again = tmp_path / "relup-again"
    again.write_text(out)
    code2, out2 = invoke("script", "show", str(again), "--erlang")
    assert code2 == 0
    assert out2 == out


def test_bad_script_fails_check_with_rules(tmp_path: Path) -> None:
    path = tmp_path / "bad.script"
    path.write_text(BAD)
    code, out = invoke("script", "check", str(path), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False
    rules = {(f["severity"], f["rule"]) for f in data["findings"]}
    assert ("error", "bad_op_before_point_of_no_return") in rules
    assert ("error", "illegal_instruction_after_point_of_no_return") in rules
    assert ("warning", "suspended_not_resumed") in rules


def test_lint_strict_fails_on_warnings_only_script(tmp_path: Path) -> None:
    path = tmp_path / "warn.script"
    path.write_text(
        '[{load_object_code,{demo,"2",[demo]}}, point_of_no_return, {suspend,[demo]},'
        " {load,{demo,brutal_purge,brutal_purge}}]."
    )
    assert invoke("script", "lint", str(path))[0] == 0
    code, out = invoke("script", "lint", str(path), "--strict")
    assert code == 1
    assert "suspended_not_resumed" in out


def test_python_file_defining_script(tmp_path: Path) -> None:
    path = tmp_path / "patch.py"
    path.write_text(
        "from erlbridge.upgrade import Apply, Script\n"
        "def build_script():\n"
        "    return Script([Apply('erlang', 'garbage_collect', [])])\n"
    )
    code, out = invoke("script", "show", str(path), "--erlang")
    assert code == 0
    assert out.strip() == "[{apply,{erlang,garbage_collect,[]}}]."
    assert invoke("script", "check", str(path))[0] == 0


def test_python_file_without_script_is_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "nothing.py"
    path.write_text("x = 1\n")
    code, out = invoke("script", "check", str(path))
    assert code == 2
    assert "defines no `script`" in out


def test_malformed_erlang_text_is_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.script"
    path.write_text("[{load_object_code, {demo,")
    assert invoke("script", "check", str(path))[0] == 2


def test_appup_from_fixtures_is_shown_with_high_level_instructions() -> None:
    code, out = invoke("script", "show", str(APPUP), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["kind"] == "appup"
    up = data["scripts"][0]
    assert up["label"] == "up from 1.0.0"
    types = [i["type"] for i in up["instructions"]]
    assert types[0] == "SyncNodes"
    assert "Update" in types
    assert invoke("script", "check", str(APPUP))[0] == 0
