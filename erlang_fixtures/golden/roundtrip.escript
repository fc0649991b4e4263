#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% Checks erlbridge's encoder against the real binary_to_term:
%%
%%   escript roundtrip.escript PAIRS.txt
%%
%% PAIRS.txt has one line per case: "NAME HEX_EXPECTED HEX_OURS". For each line both
%% binaries are decoded with binary_to_term and compared with =:=. Prints
%% "ok NAME", "mismatch NAME" or "badarg NAME" per line and exits 1 if any failed.
-mode(compile).

main([File]) ->
    {ok, Data} = file:read_file(File),
    Lines = [L || L <- binary:split(Data, <<"\n">>, [global]), L =/= <<>>],
    Results = [check(binary:split(L, <<" ">>, [global])) || L <- Lines],
    Failed = [R || R <- Results, R =/= ok],
    io:format("checked ~b, failed ~b~n", [length(Results), length(Failed)]),
    halt(case Failed of [] -> 0; _ -> 1 end);
main(_) ->
    io:format(standard_error, "usage: roundtrip.escript PAIRS.txt~n", []),
    halt(2).

check([Name, Expected, Ours]) ->
    try {binary_to_term(unhex(Expected)), binary_to_term(unhex(Ours))} of
        {A, B} when A =:= B ->
            io:format("ok ~s~n", [Name]),
            ok;
        _ ->
            io:format("mismatch ~s~n", [Name]),
            mismatch
    catch
        error:badarg ->
            io:format("badarg ~s~n", [Name]),
            badarg
    end.

unhex(Hex) -> binary:decode_hex(Hex).
