-module(fixture_extra_app).
-vsn("1.0.0").
-behaviour(application).
-export([start/2, stop/1]).

start(_Type, _Args) ->
    supervisor:start_link({local, fixture_extra_sup}, fixture_extra_sup, []).

stop(_State) -> ok.
