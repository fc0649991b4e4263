"""Fixtures for the driver's integration tests: a tiny OTP app ``drvt`` in versions 1, 2
and 3, and 3-node local clusters of plain ``erl`` nodes on a private EPMD port.

Real nodes, no mocks. Tests run their async body with ``asyncio.run`` (no plugin needed).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))

APP = """{application, drvt, [{description, "driver test app"}, {vsn, "%(v)s"},
 {modules, [drvt_app, drvt_sup, drvt_srv, drvt_hold]}, {registered, [drvt_sup, drvt_srv]},
 {applications, [kernel, stdlib]}, {mod, {drvt_app, []}}]}.
"""
APP_MOD = """-module(drvt_app).
-vsn("%(v)s").
-behaviour(application).
-export([start/2, stop/1]).
start(_, _) -> drvt_sup:start_link().
stop(_) -> ok.
"""
SUP = """-module(drvt_sup).
-vsn("%(v)s").
-behaviour(supervisor).
-export([start_link/0, init/1]).
start_link() -> supervisor:start_link({local, ?MODULE}, ?MODULE, []).
init([]) ->
    {ok, {{one_for_one, 10, 10},
          [{drvt_srv, {drvt_srv, start_link, []}, permanent, 2000, worker, [drvt_srv]},
           {drvt_hold, {drvt_hold, start_link, []}, permanent, brutal_kill, worker, [drvt_hold]}]}}.
"""
# v1 state: {state, Count}; v2+: {state, Count, Extra} (code_change stores Extra).
SRV = """-module(drvt_srv).
-vsn("%(v)s").
-behaviour(gen_server).
-export([start_link/0, state/0, bump/0, init/1, handle_call/3, handle_cast/2,
         handle_info/2, terminate/2, code_change/3]).
start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).
state() -> gen_server:call(?MODULE, state).
bump() -> gen_server:call(?MODULE, bump).
init([]) -> {ok, %(init)s}.
handle_call(state, _From, S) -> {reply, {"%(v)s", S}, S};
handle_call(bump, _From, S) ->
    C = element(2, S) + 1, {reply, C, setelement(2, S, C)}.
handle_cast(_, S) -> {noreply, S}.
handle_info(_, S) -> {noreply, S}.
terminate(_, _) -> ok.
%% {sleep, Ms, Extra}: a state migration that takes Ms (benchmarks).
code_change(Old, S, {sleep, Ms, Extra}) -> timer:sleep(Ms), code_change(Old, S, Extra);
code_change(_Old, {state, C}, Extra) -> {ok, {state, C, Extra}};
code_change(_Old, {state, C, _}, Extra) -> {ok, {state, C, Extra}}.
"""
# Loops with local calls: after a reload it keeps running the old code.
HOLD = """-module(drvt_hold).
-vsn("%(v)s").
-export([start_link/0, init/1, loop/0]).
start_link() -> proc_lib:start_link(?MODULE, init, [self()]).
init(Parent) ->
    register(drvt_hold, self()),
    proc_lib:init_ack(Parent, {ok, self()}),
    loop().
loop() -> receive {From, vsn} -> From ! {drvt_hold, "%(v)s"}, loop(); _ -> loop() end.
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def erl() -> str:
    path = shutil.which("erl")
    if path is None:
        pytest.skip("no erl on PATH")
    return path


@pytest.fixture(scope="session")
def drvt(tmp_path_factory: pytest.TempPathFactory, erl: str) -> dict[str, Path]:
    """Compiled drvt app per version: {"1": .../drvt-1, "2": ..., "3": ...} (lib dirs)."""
    root = tmp_path_factory.mktemp("drvt")
    out = {}
    for v in ("1", "2", "3"):
        lib = root / f"drvt-{v}"
        src, ebin = lib / "src", lib / "ebin"
        src.mkdir(parents=True)
        ebin.mkdir()
        init = "{state, 0}" if v == "1" else "{state, 0, fresh}"
        for name, text in (("drvt_app", APP_MOD), ("drvt_sup", SUP), ("drvt_srv", SRV),
                           ("drvt_hold", HOLD)):
            (src / f"{name}.erl").write_text(text % {"v": v, "init": init})
        (ebin / "drvt.app").write_text(APP % {"v": v})
        subprocess.run(["erlc", "-o", str(ebin), *sorted(str(p) for p in src.glob("*.erl"))],
                       check=True, capture_output=True)
        out[v] = lib
    return out


@dataclass
class Cluster:
    """Local erl nodes sharing a private EPMD; ``names`` in start order."""

    epmd_port: int
    cookie: str
    names: list[str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: Path | None = None

    async def connect_all(self, node: object, timeout: float = 20.0) -> None:
        """Wait until every node answers and runs drvt (nodes take a moment to boot)."""
        import asyncio  # noqa: PLC0415

        end = time.monotonic() + timeout * FACTOR
        for n in self.names:
            while True:
                try:
                    apps = await node.rpc(n, "application", "which_applications", [],  # type: ignore[attr-defined]
                                          timeout=2.0)
                    if any(a[0] == "drvt" for a in apps):
                        break
                except Exception:
                    if time.monotonic() > end:
                        raise
                await asyncio.sleep(0.2)

    def kill(self, name: str) -> None:
        p = self.procs[name]
        p.kill()
        p.wait(10)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
        for p in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(10)
        env = {**os.environ, "ERL_EPMD_PORT": str(self.epmd_port)}
        subprocess.run(["epmd", "-kill"], env=env, capture_output=True, check=False)


def start_cluster(tmp: Path, n: int, pa: list[Path], *, prefix: str = "drv",
                  eval_: str = "ok = application:start(sasl), ok = application:start(drvt)",
                  ) -> Cluster:
    port = _free_port()
    cookie = secrets.token_hex(8)
    tag = secrets.token_hex(2)
    names = [f"{prefix}{tag}{i}@127.0.0.1" for i in range(n)]
    c = Cluster(port, cookie, names, logs=tmp)
    env = {**os.environ, "ERL_EPMD_PORT": str(port)}
    subprocess.run(["epmd", "-daemon"], env=env, check=True)
    end = time.monotonic() + 10
    while True:  # `epmd -daemon` returns before it listens
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)
    for name in names:
        # No scheduler busy-waiting: many nodes share two cores here (one node per host in
        # production would not care).
        args = ["erl", "-name", name, "-setcookie", cookie, "-noshell", "-noinput",
                "+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none",
                "-kernel", "logger_level", "warning", "-sasl", "sasl_error_logger", "false"]
        for p in pa:
            args += ["-pa", str(p)]
        args += ["-eval", eval_]
        log = open(tmp / f"{name.split('@')[0]}.log", "wb")  # noqa: SIM115
        c.procs[name] = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
    return c


@pytest.fixture
def cluster3(tmp_path: Path, drvt: dict[str, Path]) -> Iterator[Cluster]:
    c = start_cluster(tmp_path, 3, [drvt["1"] / "ebin"])
    try:
        yield c
    finally:
        c.stop()




class DrvtCluster:
    """The plugin's ``erl_cluster`` (local target systems or containers, any OTP) with the
    drvt app compiled *on a target* (so the beams fit its OTP) and running on every node."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.names: list[str] = list(cluster.node_names)
        self.cookie: str = cluster.cookie
        self.epmd_port: int | None = cluster.epmd_port
        self.beams: dict[str, dict[str, bytes]] = {}
        self.tag = secrets.token_hex(3)

    def py_name(self) -> str:
        return f"py{secrets.token_hex(3)}@{self.cluster.client_host()}"

    def kill(self, name: str) -> None:
        self.cluster.kill(name)

    def pause(self, name: str) -> None:
        self.cluster.pause(name)

    def unpause(self, name: str) -> None:
        self.cluster.unpause(name)

    async def connect_all(self, node: Any) -> None:
        """Compile drvt 1/2/3 on the first node, install and start version 1 everywhere."""
        from erlbridge.term import Atom, ErlString  # noqa: PLC0415

        first = self.names[0]
        # Target systems of the fixture release carry no compiler: borrow the system OTP's
        # (same OTP release as the target's erts: the machine's, or the image's).
        loaded = await node.rpc(first, "code", "ensure_loaded", [Atom("compile")])
        if loaded[0] != "module":  # embedded mode, compiler not in the release
            dirs = await node.rpc(first, "filelib", "wildcard",
                                  [ErlString("/usr/lib/erlang/lib/compiler-*/ebin")])
            assert dirs, "no compiler on the target host"
            beams = await node.rpc(first, "filelib", "wildcard",
                                   [ErlString(sorted(d.text for d in dirs)[-1] + "/*.beam")])
            for b in beams:  # embedded mode loads nothing on demand: load them all
                await node.rpc(first, "code", "load_abs", [ErlString(b.text[:-5])])
        for v in ("1", "2", "3"):
            init = "{state, 0}" if v == "1" else "{state, 0, fresh}"
            files: dict[str, bytes] = {"drvt.app": (APP % {"v": v}).encode()}
            if v != "1":
                prev = str(int(v) - 1)
                files["drvt.appup"] = (
                    f'{{"{v}", [{{"{prev}", [{{update, drvt_srv, {{advanced, appup_up}}}}]}}],'
                    f' [{{"{prev}", [{{update, drvt_srv, {{advanced, appup_down}}}}]}}]}}.\n'
                ).encode()
            for name, text in (("drvt_app", APP_MOD), ("drvt_sup", SUP), ("drvt_srv", SRV),
                               ("drvt_hold", HOLD)):
                src = f"/tmp/drvt-src-{self.tag}/{v}/{name}.erl"
                assert await node.rpc(first, "filelib", "ensure_dir", [ErlString(src)]) == "ok"
                assert await node.rpc(first, "file", "write_file",
                                      [ErlString(src), (text % {"v": v, "init": init}).encode()]
                                      ) == "ok"
                res = await node.rpc(first, "compile", "file",
                                     [ErlString(src), [Atom("binary"), Atom("return_errors")]],
                                     timeout=60)
                assert res[0] == "ok", res
                files[f"{name}.beam"] = res[2]
            self.beams[v] = files
        for n in self.names:
            ebin = f"/tmp/drvt-{self.tag}/{n}/drvt-1/ebin"
            assert await node.rpc(n, "filelib", "ensure_dir", [ErlString(ebin + "/x")]) == "ok"
            for fname, data in self.beams["1"].items():
                assert await node.rpc(n, "file", "write_file",
                                      [ErlString(f"{ebin}/{fname}"), data]) == "ok"
            assert await node.rpc(n, "code", "add_patha", [ErlString(ebin)]) is True
            for fname in self.beams["1"]:  # embedded mode: nothing loads on demand
                if fname.endswith(".beam"):
                    res = await node.rpc(n, "code", "load_abs",
                                         [ErlString(f"{ebin}/{fname[:-5]}")])
                    assert res[0] == "module", res
            assert await node.rpc(n, "application", "start", [Atom("drvt")]) == "ok"


@pytest.fixture
def dcluster(erl_cluster: Any) -> DrvtCluster:
    return DrvtCluster(erl_cluster)
