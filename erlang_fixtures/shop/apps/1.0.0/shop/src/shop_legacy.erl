%% Item descriptions, old style (removed in 2.0.0).
-module(shop_legacy).
-export([describe/2]).

describe(Sku, undefined) -> <<Sku/binary, " (not for sale)">>;
describe(Sku, Cents) -> <<Sku/binary, " at ", (shop_util:format_price(Cents))/binary>>.
