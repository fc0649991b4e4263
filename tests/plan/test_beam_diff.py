"""The BEAM reader and the module comparison on real beams compiled here by erlc."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from erlbridge.plan.beam import BeamError, read_beam
from erlbridge.plan.diff import ModuleKind, classify, compare_beams
from erlbridge.plan.supervisors import read_children

pytestmark = pytest.mark.skipif(shutil.which("erlc") is None, reason="needs erlc")

SRV = """-module(srv).
-behaviour(gen_server).
-export([start_link/0, init/1, handle_call/3, handle_cast/2, code_change/3, where/0]).
start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).
where() -> {?FILE, ?LINE}.
init([]) -> {ok, %s}.
handle_call(_, _, S) -> {reply, lib:f(S), S}.
handle_cast(_, S) -> {noreply, S}.
code_change(_, S, _) -> {ok, S}.
"""
SUP = """-module(sup).
-behaviour(supervisor).
-export([start_link/0, init/1]).
start_link() -> supervisor:start_link({local, top_sup}, ?MODULE, []).
init([]) -> {ok, {#{strategy => one_for_one},
    [#{id => srv, start => {srv, start_link, []}},
     {legacy, {legacy, start_link, []}, permanent, 5000, worker, [legacy]}]}}.
"""


def _compile(src: str, name: str, where: Path, *opts: str) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{name}.erl").write_text(src)
    # an absolute source path, as rebar3 passes it: ?FILE then names the build dir
    subprocess.run(["erlc", *opts, "-o", str(where), str(where / f"{name}.erl")], cwd="/",
                   check=True, timeout=120)
    return where / f"{name}.beam"


def _md5_by_beam_lib(path: Path) -> str:
    out = subprocess.run(
        ["erl", "-noshell", "-eval",
         f'{{ok, {{_, D}}}} = beam_lib:md5("{path}"), io:format("~s", [binary:encode_hex(D)]),'
         " halt()."], capture_output=True, check=True, timeout=120)
    return out.stdout.decode().strip()


def test_md5_is_beam_libs(tmp_path: Path) -> None:
    for opts in ((), ("+debug_info",), ("+deterministic",)):
        beam = _compile(SRV % "0", "srv", tmp_path / "-".join(opts or ("plain",)), *opts)
        b = read_beam(beam.read_bytes(), str(beam))
        assert b.md5.hex().upper() == _md5_by_beam_lib(beam)
        assert b.module == "srv"
        assert classify(b) == (ModuleKind.GEN_SERVER, True)
        assert "lib" in b.imported_modules


def test_recompile_elsewhere_is_not_a_change(tmp_path: Path) -> None:
    a = read_beam(_compile(SRV % "0", "srv", tmp_path / "a", "+debug_info").read_bytes())
    b = read_beam(_compile(SRV % "0", "srv", tmp_path / "other" / "b").read_bytes())
    c = read_beam(_compile(SRV % "1", "srv", tmp_path / "c").read_bytes())
    same_dir = read_beam(_compile(SRV % "0", "srv", tmp_path / "a").read_bytes())
    assert a.md5 != b.md5  # ?FILE differs
    assert compare_beams(a, b) == "paths"
    assert compare_beams(a, same_dir) == "same"  # debug_info does not count
    assert compare_beams(a, c) == "changed"


def test_supervisor_children_from_literals(tmp_path: Path) -> None:
    b = read_beam(_compile(SUP, "sup", tmp_path).read_bytes())
    assert classify(b)[0] is ModuleKind.SUPERVISOR
    info = read_children(b)
    assert info.name == "top_sup"
    assert [(c.id, c.start_module) for c in info.children] == [
        ("srv", "srv"), ("legacy", "legacy")] or {
        (c.id, c.start_module) for c in info.children} == {("srv", "srv"), ("legacy", "legacy")}
    assert not info.simple


def test_not_a_beam() -> None:
    with pytest.raises(BeamError):
        read_beam(b"FOR1\0\0\0\4XXXX", "x.beam")
    with pytest.raises(BeamError):
        read_beam(b"hello", "y.beam")
