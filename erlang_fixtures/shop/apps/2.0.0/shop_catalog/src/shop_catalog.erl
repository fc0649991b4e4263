%% Prices in cents, and query strings parsed by the third-party cowlib (1.1.0:
%% a 10 % discount on every item).
-module(shop_catalog).
-export([vsn/0, price/1, parse_query/1]).

vsn() -> "1.1.0".

price(Sku) when is_binary(Sku) ->
    case maps:get(Sku, shop_catalog_data:items(), undefined) of
        undefined -> undefined;
        Cents -> Cents - Cents div 10
    end.

parse_query(Qs) when is_binary(Qs) ->
    cow_qs:parse_qs(Qs).
