%% The shop's API, and info/0: what the tests read from a running node.
-module(shop).
-export([vsn/0, info/0]).

vsn() -> <<"1.0.0">>.

info() ->
    #{vsn => vsn(),
      catalog_vsn => list_to_binary(shop_catalog:vsn()),
      cart => shop_cart:state_info(),
      children => [{Id, is_pid(Pid) andalso is_process_alive(Pid)}
                   || {Id, Pid, _, _} <- supervisor:which_children(shop_sup)],
      modules => lists:sort([M || {M, _} <- code:all_loaded(),
                                  lists:prefix("shop", atom_to_list(M))]),
      apps => lists:sort([{A, list_to_binary(V)}
                          || {A, _, V} <- application:which_applications()]),
      pids => #{shop_sup => whereis(shop_sup), shop_cart => whereis(shop_cart),
                shop_audit => whereis(shop_audit)}}.
