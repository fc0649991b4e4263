%% The audit log (new in 2.0.0): counts cart events, keeps the last few.
-module(shop_audit).
-behaviour(gen_server).
-export([start_link/0, record/1, count/0]).
-export([init/1, handle_call/3, handle_cast/2, code_change/3]).

-define(KEEP, 20).

start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% A cast: the cart must not block on (or crash with) the audit log.
record(Event) -> gen_server:cast(?MODULE, {record, Event}).

count() -> gen_server:call(?MODULE, count).

init([]) -> {ok, {0, []}}.

handle_call(count, _From, {N, _} = S) -> {reply, N, S}.

handle_cast({record, Event}, {N, Last}) ->
    {noreply, {N + 1, lists:sublist([Event | Last], ?KEEP)}}.

code_change(_OldVsn, State, _Extra) -> {ok, State}.
