%% The catalog's items (the same in every version).
-module(shop_catalog_data).
-export([items/0]).

items() ->
    #{<<"apple">> => 120, <<"pear">> => 150, <<"plum">> => 90}.
