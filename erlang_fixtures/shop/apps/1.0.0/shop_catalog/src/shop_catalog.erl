%% Prices in cents, and query strings parsed by the third-party cowlib (1.0.0).
-module(shop_catalog).
-export([vsn/0, price/1, parse_query/1]).

vsn() -> "1.0.0".

price(Sku) when is_binary(Sku) ->
    maps:get(Sku, shop_catalog_data:items(), undefined).

parse_query(Qs) when is_binary(Qs) ->
    cow_qs:parse_qs(Qs).
