-module(fixture_extra_server).
-vsn("1.0.0").
-behaviour(gen_server).
-export([start_link/0, ping/0]).
-export([init/1, handle_call/3, handle_cast/2]).

start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

ping() -> gen_server:call(?MODULE, ping).

init([]) -> {ok, nostate}.

handle_call(ping, _From, S) -> {reply, extra_pong, S}.

handle_cast(_Msg, S) -> {noreply, S}.
