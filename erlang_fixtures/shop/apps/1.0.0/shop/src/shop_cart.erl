%% The cart: item quantities and the number of adds (state record 1.0.0).
-module(shop_cart).
-behaviour(gen_server).
-export([start_link/0, add/2, state_info/0, describe/1]).
-export([init/1, handle_call/3, handle_cast/2, code_change/3]).

-record(state, {items = #{} :: #{binary() => pos_integer()},
                adds = 0 :: non_neg_integer(),
                greeting = <<>> :: binary()}).

start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

add(Sku, Qty) when is_binary(Sku), is_integer(Qty), Qty > 0 ->
    gen_server:call(?MODULE, {add, Sku, Qty}).

%% The state as a map, with the record's field names (to see its shape from outside).
state_info() -> gen_server:call(?MODULE, state_info).

describe(Sku) -> shop_legacy:describe(Sku, shop_catalog:price(Sku)).

init([]) -> {ok, #state{greeting = describe(<<"apple">>)}}.

handle_call({add, Sku, Qty}, _From, #state{items = Items, adds = N} = S) ->
    New = maps:update_with(Sku, fun(Q) -> Q + Qty end, Qty, Items),
    {reply, ok, S#state{items = New, adds = N + 1}};
handle_call(state_info, _From, S) ->
    Fields = record_info(fields, state),
    {reply, maps:from_list(lists:zip(Fields, tl(tuple_to_list(S)))), S}.

handle_cast(_Msg, S) -> {noreply, S}.

code_change(_OldVsn, State, _Extra) -> {ok, State}.
