%% Helpers loaded into the target nodes by the erlbridge test suite (via code:load_binary,
%% so they work on local and container nodes alike).
-module(eb_test).
-export([wait_forever/0, echo/0, start_echo/1, link_and_report/2, monitor_and_report/2,
         print/1, big_binary/1, sleep_then/2, send_after_connect/2, trap_and_wait/0,
         start_sink/0, sink_count/1]).

wait_forever() ->
    receive stop -> ok end.

trap_and_wait() ->
    process_flag(trap_exit, true),
    receive stop -> ok end.

%% echo: {From, Msg} -> From ! {echo, Msg}
echo() ->
    receive
        stop -> ok;
        {From, Msg} -> From ! {echo, Msg}, echo()
    end.

start_echo(Name) ->
    Pid = spawn(fun echo/0),
    true = register(Name, Pid),
    Pid.

%% Spawn a process that links to Target, traps exits and reports {linked_exit, Self, Reason}
%% to ReportTo when the link fires.
link_and_report(Target, ReportTo) ->
    Parent = self(),
    Pid = spawn(fun() ->
                   process_flag(trap_exit, true),
                   link(Target),
                   Parent ! {self(), linked},
                   receive {'EXIT', Target, Reason} -> ReportTo ! {linked_exit, self(), Reason} end
               end),
    receive {Pid, linked} -> Pid after 5000 -> error(link_timeout) end.

%% Spawn a process that monitors Target and reports {monitor_down, Self, Reason} to ReportTo.
monitor_and_report(Target, ReportTo) ->
    Parent = self(),
    Pid = spawn(fun() ->
                   Ref = erlang:monitor(process, Target),
                   Parent ! {self(), monitoring},
                   receive {'DOWN', Ref, process, _, Reason} -> ReportTo ! {monitor_down, self(), Reason} end
               end),
    receive {Pid, monitoring} -> Pid after 5000 -> error(monitor_timeout) end.

print(Term) ->
    io:format("value: ~p~n", [Term]),
    io:put_chars(<<"bin line\n">>),
    done.

big_binary(Size) ->
    binary:copy(<<"x">>, Size).

sleep_then(Ms, Value) ->
    timer:sleep(Ms),
    Value.

send_after_connect(Node, Name) ->
    true = net_kernel:connect_node(Node),
    {Name, Node} ! {hello_from, node()},
    ok.

%% A process that counts the messages it receives; sink_count/1 asks it.
start_sink() ->
    spawn(fun() -> sink(0) end).

sink(N) ->
    receive
        {count, From, Ref} -> From ! {Ref, N}, sink(N);
        _ -> sink(N + 1)
    end.

sink_count(Sink) ->
    Ref = make_ref(),
    Sink ! {count, self(), Ref},
    receive {Ref, N} -> N after 10000 -> timeout end.
