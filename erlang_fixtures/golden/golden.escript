#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% Golden vectors for erlbridge's term codec: writes term_to_binary output of a corpus
%% that covers every tag and edge as JSON.
%%
%%   escript golden.escript OUT.json [NODE_NAME]
%%
%% Starts distribution itself (so pids, ports and references come from a real
%% distributed node); set ERL_EPMD_PORT to use a private epmd. Each vector has:
%%   name, stable (false when the bytes differ from run to run: pids, refs, ports, funs
%%   (their module name holds the escript's compile time), large maps of atoms (their
%%   order follows atom hashes that differ between runs)),
%%   roundtrip (false for LOCAL_EXT, which only the encoding node instance can read),
%%   plain, minor0, minor2, compressed, compressed2 (hex; compressed2 is
%%   [compressed, {minor_version, 2}]; any of the last four is "" when it equals
%%   plain), text (hex of the UTF-8 "~tw" form, "" if the term has no literal syntax).
-mode(compile).

main([Out]) ->
    main([Out, "golden@127.0.0.1"]);
main([Out, NodeName]) ->
    ok = start_distribution(list_to_atom(NodeName)),
    Vectors = [vector(V) || V <- corpus()],
    Json = ["{\"otp\": \"", erlang:system_info(otp_release), "\",\n \"vectors\": [\n",
            lists:join(",\n", Vectors), "\n]}\n"],
    ok = file:write_file(Out, Json),
    io:format("wrote ~b vectors to ~s~n", [length(Vectors), Out]),
    halt(0);
main(_) ->
    io:format(standard_error, "usage: golden.escript OUT.json [NODE_NAME]~n", []),
    halt(2).

start_distribution(Name) ->
    _ = os:cmd("epmd -daemon"),
    start_distribution(Name, 25).

%% epmd -daemon returns before epmd listens: retry for a few seconds.
start_distribution(Name, Tries) ->
    case net_kernel:start([Name, longnames]) of
        {ok, _} -> ok;
        {error, _} when Tries > 1 ->
            timer:sleep(200),
            start_distribution(Name, Tries - 1);
        {error, Reason} ->
            io:format(standard_error, "cannot start distribution: ~p~n", [Reason]),
            halt(1)
    end.

vector({Name, Term, Flags}) ->
    Stable = not lists:member(unstable, Flags),
    Local = lists:member(local, Flags),
    Plain = case Local of
                true -> term_to_binary(Term, [local]);
                false -> term_to_binary(Term)
            end,
    Text = case lists:member(notext, Flags) of
               true -> <<>>;
               false -> unicode:characters_to_binary(io_lib:format("~tw", [Term]))
           end,
    io_lib:format(
      "{\"name\": \"~s\", \"stable\": ~s, \"roundtrip\": ~s, \"plain\": \"~s\", "
      "\"minor0\": \"~s\", \"minor2\": \"~s\", \"compressed\": \"~s\", "
      "\"compressed2\": \"~s\", \"text\": \"~s\"}",
      [Name, Stable, not Local, hex(Plain),
       other(Plain, term_to_binary(Term, [{minor_version, 0}])),
       other(Plain, term_to_binary(Term, [{minor_version, 2}])),
       other(Plain, term_to_binary(Term, [compressed])),
       other(Plain, term_to_binary(Term, [compressed, {minor_version, 2}])),
       hex(Text)]).

other(Same, Same) -> "";
other(_, Bin) -> hex(Bin).

hex(Bin) -> [io_lib:format("~2.16.0b", [B]) || <<B>> <= Bin].

nest(0, Leaf, _Wrap) -> Leaf;
nest(N, Leaf, Wrap) -> Wrap(nest(N - 1, Leaf, Wrap)).

corpus() ->
    Y = 42,
    Bin = <<"captured">>,
    Pid = spawn(fun() -> receive stop -> ok end end),
    Port = open_port({spawn, "cat"}, []),
    Apps = application:which_applications(),
    [
     %% integers: every width and both signs
     {"int_0", 0, []}, {"int_1", 1, []}, {"int_255", 255, []}, {"int_256", 256, []},
     {"int_m1", -1, []}, {"int_max32", 2147483647, []}, {"int_min32", -2147483648, []},
     {"big_2p31", 2147483648, []}, {"big_m2p31m1", -2147483649, []},
     {"big_2p32", 1 bsl 32, []}, {"big_2p64", 1 bsl 64, []}, {"big_m2p64", -(1 bsl 64), []},
     {"big_small_max", (1 bsl 2040) - 1, []}, {"big_large_min", 1 bsl 2040, []},
     {"big_large_neg", -(1 bsl 4000) + 12345, []}, {"big_huge", 1 bsl 100000, []},
     %% floats
     {"float_0", 0.0, []}, {"float_m0", -0.0, []}, {"float_1_5", 1.5, []},
     {"float_0_1", 0.1, []}, {"float_pi", math:pi(), []}, {"float_big", -1.5e300, []},
     {"float_max", 1.7976931348623157e308, []}, {"float_denorm", 5.0e-324, []},
     %% atoms
     {"atom_ok", ok, []}, {"atom_empty", '', []}, {"atom_space", 'hello world', []},
     {"atom_true", true, []}, {"atom_false", false, []}, {"atom_undefined", undefined, []},
     {"atom_latin1", 'caf\x{e9}', []}, {"atom_lambda", '\x{3bb}', []},
     {"atom_cjk", '\x{65e5}\x{672c}', []},
     {"atom_255", list_to_atom(lists:duplicate(255, $a)), []},
     {"atom_utf8_long", list_to_atom(lists:duplicate(200, 16#e9)), []},
     {"atom_emoji_long", list_to_atom(lists:duplicate(100, 16#1F600)), []},
     %% tuples
     {"tuple_0", {}, []}, {"tuple_1", {a}, []}, {"tuple_3", {1, two, "three"}, []},
     {"tuple_255", list_to_tuple(lists:seq(1, 255)), []},
     {"tuple_256", list_to_tuple(lists:seq(1, 256)), []},
     %% lists and strings
     {"nil", [], []}, {"string_abc", "abc", []}, {"string_bytes", lists:seq(0, 255), []},
     {"string_65535", lists:duplicate(65535, $x), [notext]},
     {"list_65536", lists:duplicate(65536, $x), [notext]},
     {"list_unicode", "h\x{e9}\x{3bb}\x{1F600}", []}, {"list_ints", [1, 256, -1], []},
     {"list_mixed", [a, 1, "s", <<"b">>, {t}], []}, {"list_nested", [[], [[]], [[[]]]], []},
     {"improper_1", [1 | 2], []}, {"improper_3", [a, b | c], []},
     {"improper_bin_tail", [1 | <<"t">>], []}, {"improper_tuple_tail", [x | {y}], []},
     {"seq_10000", lists:seq(1, 10000), []},
     %% binaries and bitstrings
     {"bin_empty", <<>>, []}, {"bin_123", <<1, 2, 3>>, []}, {"bin_text", <<"hello">>, []},
     {"bin_utf8", <<"h\x{e9}\x{3bb}"/utf8>>, []},
     {"bin_20k", list_to_binary([I rem 251 || I <- lists:seq(1, 20000)]), [notext]},
     {"bits_1", <<1:1>>, []}, {"bits_3", <<255, 7:3>>, []}, {"bits_7", <<0:7>>, []},
     {"bits_15", <<16#abcd:15>>, []},
     %% maps
     {"map_empty", #{}, []}, {"map_1", #{a => 1}, []},
     {"map_mixed_keys", #{1 => a, b => 2, "s" => 3, <<"b">> => 4, {t} => 5, 1.5 => 6}, []},
     {"map_32", maps:from_list([{I, I * I} || I <- lists:seq(1, 32)]), []},
     {"map_33", maps:from_list([{I, I * I} || I <- lists:seq(1, 33)]), []},
     {"map_100_atoms", maps:from_list([{list_to_atom("k" ++ integer_to_list(I)), I}
                                        || I <- lists:seq(1, 100)]), [unstable]},
     {"map_list_key", #{[1, 2] => a, [] => b}, []},
     {"map_map_key", #{#{k => [v]} => x}, []},
     {"map_nested", #{a => #{b => #{c => [1, 2, 3]}}}, []},
     {"map_bool_keys", #{true => 1, false => 0}, []},
     {"map_python_colliding_keys", #{1 => a, 1.0 => b, true => c, {1} => d, {1.0} => e}, []},
     %% nesting
     {"deep_tuple_300", nest(300, leaf, fun(T) -> {T} end), []},
     {"deep_list_300", nest(300, [], fun(T) -> [T] end), []},
     {"deep_map_100", nest(100, #{}, fun(T) -> #{k => T} end), []},
     %% funs and exports
     {"export_map", fun lists:map/2, []}, {"export_plus", fun erlang:'+'/2, []},
     {"export_quoted", fun 'Mod':'Fun'/0, []},
     {"fun_0", fun() -> ok end, [unstable, notext]},
     {"fun_closure", fun(X) -> X + Y end, [unstable, notext]},
     {"fun_closure_bin", fun() -> {Bin, Y} end, [unstable, notext]},
     %% pids, ports, references from this distributed node
     {"pid_self", self(), [unstable, notext]}, {"pid_spawned", Pid, [unstable, notext]},
     {"pid_init", whereis(init), [unstable, notext]},
     {"port_cat", Port, [unstable, notext]},
     {"port_first", hd(erlang:ports()), [unstable, notext]},
     {"ref_make", make_ref(), [unstable, notext]},
     {"ref_alias", alias(), [unstable, notext]},
     {"ref_monitor", erlang:monitor(process, Pid), [unstable, notext]},
     {"rpc_call", {call, mod, 'fun', [1, <<"bin">>, atom], self()}, [unstable, notext]},
     {"gen_call", {'$gen_call', {self(), make_ref()}, {call, erlang, node, [], self()}},
      [unstable, notext]},
     {"reply_mixed", {ok, [{self(), make_ref(), 1.5, -0.25} || _ <- lists:seq(1, 5)]},
      [unstable, notext]},
     %% real replies
     {"which_applications", Apps, []},
     {"app_keys", application:get_all_key(kernel), [unstable]},
     {"record_tuple", {person, "Joe", 42, [erlang]}, []}
    ] ++ version_specific(Pid).

%% Terms only newer OTP releases can make.
version_specific(Pid) ->
    Release = list_to_integer(erlang:system_info(otp_release)),
    Local = case Release >= 26 of
                true -> [{"local_ext", {a, Pid, make_ref()}, [local, unstable, notext]}];
                false -> []
            end,
    Records = case Release >= 29 of
                  true ->
                      %% Native records (OTP 29): called through apply so this file
                      %% still compiles on older releases.
                      R1 = apply(records, create,
                                 [mymod, rec, [{x, 10}, {y, <<"b">>}, {z, c}],
                                  #{is_exported => false}]),
                      R2 = apply(records, create,
                                 [mymod, pub, [{a, [1, 2]}], #{is_exported => true}]),
                      [{"native_record", R1, [notext]}, {"native_record_exported", R2, [notext]}];
                  false -> []
              end,
    Local ++ Records.
