%% Helpers shared by every shop version (this application never changes).
-module(shop_util).
-export([format_price/1, parse_args/1]).

%% Cents as "12.34".
-spec format_price(non_neg_integer()) -> binary().
format_price(Cents) when is_integer(Cents), Cents >= 0 ->
    iolist_to_binary(io_lib:format("~b.~2..0b", [Cents div 100, Cents rem 100])).

%% Command-line style options through the third-party getopt library.
-spec parse_args(string()) -> {ok, [{atom(), term()}]} | {error, term()}.
parse_args(Line) ->
    Spec = [{sku, $s, "sku", string, "item"},
            {qty, $q, "qty", {integer, 1}, "quantity"}],
    case getopt:parse(Spec, Line) of
        {ok, {Opts, _Rest}} -> {ok, Opts};
        {error, _} = E -> E
    end.
