-module(fixture_extra_sup).
-vsn("1.0.0").
-behaviour(supervisor).
-export([init/1]).

init([]) ->
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10},
          [#{id => fixture_extra_server,
             start => {fixture_extra_server, start_link, []},
             modules => [fixture_extra_server]}]}}.
