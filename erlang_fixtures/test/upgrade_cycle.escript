#!/usr/bin/env escript
%%! -hidden -dist_listen false
%% The fixture release's own upgrade cycle, in plain Erlang, against one node:
%%   1.0.0 -> 2.0.0 -> 2.1.0 -> 2.0.0 -> 1.0.0 through release_handler,
%% with the fixture_server state and the node's applications/modules checked after
%% each step, and the soft_purge refusal shown while fixture_holder runs old code.
%%
%% Usage: upgrade_cycle.escript NODE
%% The cookie comes from $HOME/.erlang.cookie, the EPMD port from ERL_EPMD_PORT.
%% CLIENT_HOST (default 127.0.0.1) is the host part of this client's node name.
%% Prints one line per check; exit status 0 when every check passed.
-mode(compile).

main([Target]) ->
    Host = case os:getenv("CLIENT_HOST") of false -> "127.0.0.1"; H -> H end,
    Name = list_to_atom("cycle_" ++ os:getpid() ++ "@" ++ Host),
    {ok, _} = net_kernel:start(Name, #{name_domain => longnames, hidden => true}),
    Node = list_to_atom(Target),
    try
        run(Node),
        io:format("CYCLE OK~n"),
        halt(0)
    catch
        throw:{check_failed, What, Got} ->
            io:format("CHECK FAILED: ~s~n  got: ~p~n", [What, Got]),
            halt(1);
        Class:Reason:Stack ->
            io:format("CRASH: ~p:~p~n~p~n", [Class, Reason, Stack]),
            halt(2)
    end;
main(_) ->
    io:format("usage: upgrade_cycle.escript NODE~n"),
    halt(64).

rpc(Node, M, F, A) ->
    case rpc:call(Node, M, F, A, 120000) of
        {badrpc, R} -> throw({check_failed, io_lib:format("rpc ~p:~p", [M, F]), {badrpc, R}});
        V -> V
    end.

check(What, true, _Got) -> io:format("ok   ~s~n", [What]);
check(What, false, Got) -> throw({check_failed, What, Got}).

expect(What, Expected, Got) -> check(What, Expected =:= Got, Got).

match_ok(What, Got) ->
    check(What, element(1, Got) =:= ok, Got).

releases(Node) ->
    lists:sort([{V, S} || {_, V, _, S} <- rpc(Node, release_handler, which_releases, [])]).

run(Node) ->
    pong = net_adm:ping(Node),
    io:format("node ~s, OTP ~s~n", [Node, rpc(Node, erlang, system_info, [otp_release])]),

    %% -- 1.0.0 as installed --------------------------------------------------
    expect("starts on 1.0.0", "1.0.0", rpc(Node, fixture, vsn, [])),
    expect("1.0.0 is permanent", [{"1.0.0", permanent}], releases(Node)),
    Count0 = maps:get(count, rpc(Node, fixture, state, [])),
    Count1 = rpc(Node, fixture, bump, []),
    expect("bump counts", Count0 + 1, Count1),
    expect("1.0.0 record fields", [count, events], maps:get(fields, rpc(Node, fixture, state, []))),
    expect("fixture_old loaded", true, maps:get(fixture_old, maps:get(modules, info(Node)))),

    %% -- up: 1.0.0 -> 2.0.0 --------------------------------------------------
    expect("unpack 2.0.0", {ok, "2.0.0"}, rpc(Node, fixture, unpack, ["2.0.0"])),
    match_ok("check_install 2.0.0", rpc(Node, release_handler, check_install_release, ["2.0.0"])),
    expect("install 2.0.0", {ok, "1.0.0", []}, rpc(Node, release_handler, install_release, ["2.0.0"])),
    expect("make_permanent 2.0.0", ok, rpc(Node, release_handler, make_permanent, ["2.0.0"])),
    S2 = rpc(Node, fixture, state, []),
    expect("2.0.0 code", "2.0.0", rpc(Node, fixture, vsn, [])),
    expect("2.0.0 record gains tag", [count, events, tag], maps:get(fields, S2)),
    expect("count kept across upgrade", Count1, maps:get(count, S2)),
    expect("tag set by code_change up", upgraded, maps:get(tag, S2)),
    check("code_change up recorded",
          lists:member({code_change, up, "1.0.0", "2.0.0"}, maps:get(events, S2)), S2),
    check("config_change reported (level 2)",
          lists:any(fun({config_changed, Ch, _, _}) -> lists:member({level, 2}, Ch);
                       (_) -> false end, maps:get(events, S2)), S2),
    I2 = info(Node),
    expect("fixture_old removed", false, maps:get(fixture_old, maps:get(modules, I2))),
    expect("fixture_new added", true, maps:get(fixture_new, maps:get(modules, I2))),
    expect("supervisor gained a child", [fixture_holder, fixture_new, fixture_server],
           maps:get(children, I2)),
    expect("new child answers", pong, rpc(Node, fixture_new, ping, [])),
    expect("application fixture_extra added", extra_pong,
           rpc(Node, fixture_extra_server, ping, [])),
    expect("app env level 2", {ok, 2}, rpc(Node, application, get_env, [fixture, level])),
    expect("library reloaded", 10, rpc(Node, fixture_lib, transform, [5])),
    expect("holder still runs 1.0.0 code (soft_purge kept it)", true,
           rpc(Node, fixture, holder_old_code, [])),
    Count2 = rpc(Node, fixture, bump, []),
    expect("bump after upgrade", Count1 + 1, Count2),

    %% -- up: 2.0.0 -> 2.1.0, refused by soft_purge first ----------------------
    expect("unpack 2.1.0", {ok, "2.1.0"}, rpc(Node, fixture, unpack, ["2.1.0"])),
    expect("check_install 2.1.0 refused: old code in use",
           {error, {old_processes, fixture_holder}},
           rpc(Node, release_handler, check_install_release, ["2.1.0"])),
    expect("install 2.1.0 refused: old code in use",
           {error, {old_processes, fixture_holder}},
           rpc(Node, release_handler, install_release, ["2.1.0"])),
    expect("still on 2.0.0 after the refusal", "2.0.0", rpc(Node, fixture, vsn, [])),
    expect("state untouched by the refusal", Count2, maps:get(count, rpc(Node, fixture, state, []))),
    expect("release_holder", ok, rpc(Node, fixture, release_holder, [])),
    expect("holder left the old code", false, rpc(Node, fixture, holder_old_code, [])),
    expect("install 2.1.0", {ok, "2.0.0", []}, rpc(Node, release_handler, install_release, ["2.1.0"])),
    expect("make_permanent 2.1.0", ok, rpc(Node, release_handler, make_permanent, ["2.1.0"])),
    S21 = rpc(Node, fixture, state, []),
    expect("2.1.0 code", "2.1.0", rpc(Node, fixture, vsn, [])),
    expect("2.1.0 record gains hits", [count, events, tag, hits], maps:get(fields, S21)),
    expect("count kept", Count2, maps:get(count, S21)),
    expect("tag kept", upgraded, maps:get(tag, S21)),
    check("code_change up 2.0.0 -> 2.1.0 recorded",
          lists:member({code_change, up, "2.0.0", "2.1.0"}, maps:get(events, S21)), S21),
    expect("greeting changed by app env", "hi", rpc(Node, fixture, greeting, [])),
    expect("library reloaded again", 15, rpc(Node, fixture_lib, transform, [5])),
    expect("releases", [{"1.0.0", old}, {"2.0.0", old}, {"2.1.0", permanent}], releases(Node)),

    %% -- down: 2.1.0 -> 2.0.0 ------------------------------------------------
    expect("install 2.0.0 (downgrade)", {ok, "2.0.0", []},
           rpc(Node, release_handler, install_release, ["2.0.0"])),
    expect("make_permanent 2.0.0 again", ok, rpc(Node, release_handler, make_permanent, ["2.0.0"])),
    SD = rpc(Node, fixture, state, []),
    expect("2.0.0 code again", "2.0.0", rpc(Node, fixture, vsn, [])),
    expect("record back to 2.0.0 shape", [count, events, tag], maps:get(fields, SD)),
    expect("count kept down", Count2, maps:get(count, SD)),
    check("code_change down 2.1.0 -> 2.0.0 recorded",
          lists:member({code_change, down, "2.1.0", "2.0.0"}, maps:get(events, SD)), SD),
    expect("greeting back", "hello", rpc(Node, fixture, greeting, [])),
    expect("library back", 10, rpc(Node, fixture_lib, transform, [5])),

    %% -- down: 2.0.0 -> 1.0.0 ------------------------------------------------
    expect("install 1.0.0 (downgrade)", {ok, "1.0.0", []},
           rpc(Node, release_handler, install_release, ["1.0.0"])),
    expect("make_permanent 1.0.0 again", ok, rpc(Node, release_handler, make_permanent, ["1.0.0"])),
    S1 = rpc(Node, fixture, state, []),
    expect("1.0.0 code again", "1.0.0", rpc(Node, fixture, vsn, [])),
    expect("record back to 1.0.0 shape", [count, events], maps:get(fields, S1)),
    expect("count kept down to 1.0.0", Count2, maps:get(count, S1)),
    check("code_change down 2.0.0 -> 1.0.0 recorded",
          lists:member({code_change, down, "2.0.0", "1.0.0"}, maps:get(events, S1)), S1),
    I1 = info(Node),
    expect("fixture_old back", true, maps:get(fixture_old, maps:get(modules, I1))),
    expect("fixture_new gone", false, maps:get(fixture_new, maps:get(modules, I1))),
    expect("supervisor child removed", [fixture_holder, fixture_server], maps:get(children, I1)),
    check("application fixture_extra removed",
          not lists:keymember(fixture_extra, 1, maps:get(applications, I1)), I1),
    expect("app env back", [{greeting, "hello"}, {level, 1}], maps:get(env, I1)),
    expect("library back to 1.0.0", 6, rpc(Node, fixture_lib, transform, [5])),
    expect("bump on 1.0.0", Count2 + 1, rpc(Node, fixture, bump, [])),
    expect("releases at the end",
           [{"1.0.0", permanent}, {"2.0.0", old}, {"2.1.0", old}], releases(Node)),
    ok.

info(Node) -> rpc(Node, fixture, info, []).
