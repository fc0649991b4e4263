#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% What binary_to_term makes of crafted external terms (erlbridge's acceptance
%% vectors, tests/term/acceptance_cases.py):
%%
%%   escript acceptance.escript CASES.txt
%%
%% CASES.txt has one line per case: "NAME HEX". Prints "otp RELEASE", then per case
%% "NAME ok HEX" (the decoded term re-encoded with [{minor_version, 2}], what OTP 26+
%% and distribution emit) or "NAME refused CLASS:REASON".
-mode(compile).

main([File]) ->
    {ok, Data} = file:read_file(File),
    io:format("otp ~s~n", [erlang:system_info(otp_release)]),
    Lines = [L || L <- binary:split(Data, <<"\n">>, [global]), L =/= <<>>],
    lists:foreach(fun(L) -> verdict(binary:split(L, <<" ">>)) end, Lines),
    halt(0);
main(_) ->
    io:format(standard_error, "usage: acceptance.escript CASES.txt~n", []),
    halt(2).

verdict([Name, Hex]) ->
    %% Not [safe]: that refuses every atom the node does not know yet.
    try binary_to_term(binary:decode_hex(Hex)) of
        Term ->
            Out = binary:encode_hex(term_to_binary(Term, [{minor_version, 2}])),
            io:format("~s ok ~s~n", [Name, string:lowercase(Out)])
    catch
        Class:Reason -> io:format("~s refused ~p:~0p~n", [Name, Class, Reason])
    end.
