"""Cookie resolution order and secrecy (no node needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from erlbridge.cli._cookie import CookieNotFound, resolve_cookie


def test_explicit_cookie_wins(tmp_path: Path) -> None:
    file = tmp_path / "c"
    file.write_text("fromfile\n")
    cookie = resolve_cookie(
        cookie="argv", cookie_file=file, env={"ERLANG_COOKIE": "env"}, home=tmp_path
    )
    assert cookie.value == "argv"
    assert "process list" in cookie.source


def test_file_before_env_before_home(tmp_path: Path) -> None:
    (tmp_path / ".erlang.cookie").write_text("home\n")
    file = tmp_path / "c"
    file.write_text("  fromfile \n")
    env = {"ERLANG_COOKIE": "env"}
    assert resolve_cookie(cookie=None, cookie_file=file, env=env, home=tmp_path).value == (
        "fromfile"
    )
    assert resolve_cookie(cookie=None, cookie_file=None, env=env, home=tmp_path).value == "env"
    got = resolve_cookie(cookie=None, cookie_file=None, env={}, home=tmp_path)
    assert got.value == "home"
    assert got.source == str(tmp_path / ".erlang.cookie")


def test_missing_everywhere(tmp_path: Path) -> None:
    with pytest.raises(CookieNotFound, match="ERLANG_COOKIE"):
        resolve_cookie(cookie=None, cookie_file=None, env={}, home=tmp_path)


def test_unreadable_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(CookieNotFound, match="cannot read"):
        resolve_cookie(cookie=None, cookie_file=tmp_path / "nope", env={}, home=tmp_path)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(CookieNotFound, match="empty"):
        resolve_cookie(cookie=None, cookie_file=empty, env={}, home=tmp_path)


def test_repr_hides_value(tmp_path: Path) -> None:
    cookie = resolve_cookie(
        cookie=None, cookie_file=None, env={"ERLANG_COOKIE": "s3cr3t"}, home=tmp_path
    )
    assert "s3cr3t" not in repr(cookie)
    assert "s3cr3t" not in str(cookie)
