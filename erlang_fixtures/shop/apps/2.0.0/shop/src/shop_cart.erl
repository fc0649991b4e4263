%% The cart: item quantities, the number of adds and (new in 2.0.0) the total
%% number of units; every add goes to the audit log.
-module(shop_cart).
-behaviour(gen_server).
-export([start_link/0, add/2, state_info/0, describe/1]).
-export([init/1, handle_call/3, handle_cast/2, code_change/3]).

-record(state, {items = #{} :: #{binary() => pos_integer()},
                adds = 0 :: non_neg_integer(),
                greeting = <<>> :: binary(),
                units = 0 :: non_neg_integer()}).

start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

add(Sku, Qty) when is_binary(Sku), is_integer(Qty), Qty > 0 ->
    gen_server:call(?MODULE, {add, Sku, Qty}).

state_info() -> gen_server:call(?MODULE, state_info).

describe(Sku) ->
    case shop_catalog:price(Sku) of
        undefined -> <<Sku/binary, ": not for sale">>;
        Cents -> <<Sku/binary, ": ", (shop_util:format_price(Cents))/binary>>
    end.

init([]) -> {ok, #state{greeting = describe(<<"apple">>)}}.

handle_call({add, Sku, Qty}, _From, #state{items = Items, adds = N, units = U} = S) ->
    New = maps:update_with(Sku, fun(Q) -> Q + Qty end, Qty, Items),
    shop_audit:record({add, Sku, Qty}),
    {reply, ok, S#state{items = New, adds = N + 1, units = U + Qty}};
handle_call(state_info, _From, S) ->
    Fields = record_info(fields, state),
    {reply, maps:from_list(lists:zip(Fields, tl(tuple_to_list(S)))), S}.

handle_cast(_Msg, S) -> {noreply, S}.

%% 1.0.0 -> 2.0.0: add `units`, computed from the items kept.
code_change(_OldVsn, {state, Items, Adds, Greeting}, _Extra) ->
    {ok, #state{items = Items, adds = Adds, greeting = Greeting,
                units = lists:sum(maps:values(Items))}};
%% 2.0.0 -> 1.0.0: drop `units` (1.0.0's code reads a 4-tuple).
code_change({down, _OldVsn}, #state{items = Items, adds = Adds, greeting = Greeting}, _Extra) ->
    {ok, {state, Items, Adds, Greeting}};
code_change(_OldVsn, State, _Extra) ->
    {ok, State}.
