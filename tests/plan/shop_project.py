"""A small rebar3 project, ``shop``, in two versions, built into release directories
for the planner's tests (three applications, one release).

1.0.0 -> 2.0.0:

* ``shop`` 1.0.0 -> 2.0.0: ``shop_srv`` (gen_server) changes its state and exports
  ``code_change``, calls ``shop_util`` (changed library: a DepMod); ``shop_fsm``
  (gen_statem) changes without ``code_change``; ``shop_sup`` gains ``shop_new`` (added
  gen_server) and loses ``shop_old`` (removed gen_server); ``shop_fresh`` is added,
  ``shop_gone`` removed; ``shop_app`` and ``shop_same`` (which uses ``?FILE``) do not
  change;
* ``shopx`` 1.0.0 -> 1.1.0 ships its own appup (``ebin/shopx.appup``);
* ``shoplib`` 1.0.0 does not change (rebuilt in another directory).

``build(root, vsn, profile)`` copies the sources of ``vsn`` into ``root`` and runs
``rebar3 [as prod] release`` and ``tar``; ``profile="prod"`` builds with ``{mode, prod}``
and without debug_info. Returns the release directory.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REBAR_CONFIG = """{erl_opts, [debug_info]}.
{deps, []}.
{project_app_dirs, ["apps/*"]}.
{relx, [{release, {shop, "%(vsn)s"}, [sasl, shoplib, shopx, shop]},
        {dev_mode, false}, {include_erts, true}, {extended_start_script, true}]}.
{profiles, [{prod, [{erl_opts, [no_debug_info]}, {relx, [{mode, prod}]}]}]}.
"""

APP_SRC = """{application, %(app)s, [{description, "%(app)s"}, {vsn, "%(vsn)s"},
 {registered, []}, {applications, [kernel, stdlib%(deps)s]}%(mod)s, {env, []}]}.
"""

SHOP_APP = """-module(shop_app).
-behaviour(application).
-export([start/2, stop/1]).
start(_, _) -> shop_sup:start_link().
stop(_) -> ok.
"""

SUP = """-module(shop_sup).
-behaviour(supervisor).
-export([start_link/0, init/1]).
start_link() -> supervisor:start_link({local, shop_sup}, ?MODULE, []).
init([]) ->
    {ok, {#{strategy => one_for_one, intensity => 10, period => 10},
          [#{id => shop_srv, start => {shop_srv, start_link, []}},
           #{id => shop_fsm, start => {shop_fsm, start_link, []}},
           %(child)s]}}.
"""
CHILD = {
    "1.0.0": "{shop_old, {shop_old, start_link, []}, permanent, 5000, worker, [shop_old]}",
    "2.0.0": "#{id => shop_new, start => {shop_new, start_link, []}}",
}

SRV = {
    "1.0.0": """-module(shop_srv).
-behaviour(gen_server).
-export([start_link/0, get/0, block/1, init/1, handle_call/3, handle_cast/2]).
start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).
get() -> gen_server:call(?MODULE, get).
block(Ms) -> gen_server:call(?MODULE, {block, Ms}, infinity).
init([]) -> {ok, {state, shop_util:start()}}.
handle_call(get, _, S) -> {reply, S, S};
handle_call({block, Ms}, _, S) -> timer:sleep(Ms), {reply, ok, S}.
handle_cast(_, S) -> {noreply, S}.
""",
    "2.0.0": """-module(shop_srv).
-behaviour(gen_server).
-export([start_link/0, get/0, block/1, init/1, handle_call/3, handle_cast/2,
         code_change/3]).
start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).
get() -> gen_server:call(?MODULE, get).
block(Ms) -> gen_server:call(?MODULE, {block, Ms}, infinity).
init([]) -> {ok, {state, shop_util:start(), new}}.
handle_call(get, _, S) -> {reply, S, S};
handle_call({block, Ms}, _, S) -> timer:sleep(Ms), {reply, ok, S}.
handle_cast(_, S) -> {noreply, S}.
code_change({down, _}, {state, N, _}, _) -> {ok, {state, N}};
code_change(_, {state, N}, _) -> {ok, {state, shop_util:upgrade(N), upgraded}}.
""",
}

UTIL = {
    "1.0.0": """-module(shop_util).
-export([start/0]).
start() -> 1.
""",
    "2.0.0": """-module(shop_util).
-export([start/0, upgrade/1]).
start() -> 1.
upgrade(N) -> N + 100.
""",
}

FSM = """-module(shop_fsm).
-behaviour(gen_statem).
-export([start_link/0, init/1, callback_mode/0, idle/3]).
start_link() -> gen_statem:start_link({local, ?MODULE}, ?MODULE, [], []).
init([]) -> {ok, idle, %s}.
callback_mode() -> state_functions.
idle(_, _, D) -> {keep_state, D}.
"""

WORKER = """-module(%(m)s).
-behaviour(gen_server).
-export([start_link/0, init/1, handle_call/3, handle_cast/2]).
start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).
init([]) -> {ok, %(m)s}.
handle_call(_, _, S) -> {reply, S, S}.
handle_cast(_, S) -> {noreply, S}.
"""

SAME = """-module(shop_same).
-export([where/0]).
where() -> ?FILE.
"""

LIBMOD = """-module(%(m)s).
-export([f/0]).
f() -> %(v)s.
"""

SHOPX_APPUP = """%% shipped by shopx: kept as written
{"1.1.0",
 [{"1.0.0", [{load_module, shopx_mod}]}],
 [{"1.0.0", [{load_module, shopx_mod}]}]}.
"""


def sources(vsn: str, *, shop_vsn: str | None = None) -> dict[str, str]:
    """Relative path -> content of the project at ``vsn`` (``shop_vsn`` overrides the
    ``shop`` application's own version)."""
    two = vsn != "1.0.0"
    shop_v = shop_vsn or vsn
    files = {
        "rebar.config": REBAR_CONFIG % {"vsn": vsn},
        "apps/shop/src/shop.app.src": APP_SRC % {
            "app": "shop", "vsn": shop_v, "deps": ", shoplib",
            "mod": ", {mod, {shop_app, []}}"},
        "apps/shop/src/shop_app.erl": SHOP_APP,
        "apps/shop/src/shop_sup.erl": SUP % {"child": CHILD["2.0.0" if two else "1.0.0"]},
        "apps/shop/src/shop_srv.erl": SRV["2.0.0" if two else "1.0.0"],
        "apps/shop/src/shop_util.erl": UTIL["2.0.0" if two else "1.0.0"],
        "apps/shop/src/shop_fsm.erl": FSM % ("2" if two else "1"),
        "apps/shop/src/shop_same.erl": SAME,
        "apps/shoplib/src/shoplib.app.src": APP_SRC % {
            "app": "shoplib", "vsn": "1.0.0", "deps": "", "mod": ""},
        "apps/shoplib/src/shoplib_mod.erl": LIBMOD % {"m": "shoplib_mod", "v": "1"},
        "apps/shopx/src/shopx.app.src": APP_SRC % {
            "app": "shopx", "vsn": "1.1.0" if two else "1.0.0", "deps": "", "mod": ""},
        "apps/shopx/src/shopx_mod.erl": LIBMOD % {"m": "shopx_mod", "v": "2" if two else "1"},
    }
    if two:
        files["apps/shop/src/shop_new.erl"] = WORKER % {"m": "shop_new"}
        files["apps/shop/src/shop_fresh.erl"] = LIBMOD % {"m": "shop_fresh", "v": "1"}
        files["apps/shopx/ebin/shopx.appup"] = SHOPX_APPUP
    else:
        files["apps/shop/src/shop_old.erl"] = WORKER % {"m": "shop_old"}
        files["apps/shop/src/shop_gone.erl"] = LIBMOD % {"m": "shop_gone", "v": "1"}
    return files


def build(root: Path, vsn: str, *, profile: str = "default", shop_vsn: str | None = None,
          tar: bool = False) -> Path:
    """Write the project at ``vsn`` into ``root``, build its release (and tarball)."""
    for rel, text in sources(vsn, shop_vsn=shop_vsn).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    env = {**os.environ, "REBAR_OFFLINE": "1", "QUIET": "1"}
    prefix = ["rebar3"] if profile == "default" else ["rebar3", "as", profile]
    for cmd in (["release"], ["tar"]) if tar else (["release"],):
        done = subprocess.run([*prefix, *cmd], cwd=root, env=env, capture_output=True,
                              timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"rebar3 {cmd} failed in {root}:\n"
                               + done.stdout.decode()[-3000:] + done.stderr.decode()[-2000:])
    return root / "_build" / profile / "rel" / "shop"
