%% jit.erl - a workload for BEAM's JIT (tests/e2e/shared_code.sh): N modules
%% of 40 functions each, generated as abstract forms, compiled, loaded (the
%% JIT turns each into machine code in its dual-mapped memfd) and called.
%% `erl -noshell -pa DIR -run jit main N [wait]`; with wait it prints its pid
%% and waits for a line on stdin before it leaves.
-module(jit).
-export([main/1]).

main([NS | Rest]) ->
    N = list_to_integer(NS),
    Mods = [load(I) || I <- lists:seq(1, N)],
    S = lists:sum([M:F(3) || M <- Mods, {F, 1} <- M:module_info(exports), F =/= module_info]),
    io:format("modules ~p sum ~p~n", [N, S]),
    case Rest of
        ["wait"] ->
            io:format("pid ~s~n", [os:getpid()]),
            io:get_line("");
        _ ->
            ok
    end,
    halt().

load(I) ->
    M = list_to_atom("jit_m" ++ integer_to_list(I)),
    Fs = [function(I, J) || J <- lists:seq(1, 40)],
    Ex = [{name(J), 1} || J <- lists:seq(1, 40)],
    {ok, M, B} = compile:forms([{attribute, 1, module, M}, {attribute, 1, export, Ex} | Fs]),
    {module, M} = code:load_binary(M, "jit_m.erl", B),
    M.

name(J) -> list_to_atom("f" ++ integer_to_list(J)).

%% fJ(X) -> case X rem 3 of 0 -> X * J + I; 1 -> (X + J) * I; _ -> X - J - I end.
function(I, J) ->
    X = {var, 1, 'X'},
    Body = {'case', 1, {op, 1, 'rem', X, {integer, 1, 3}},
            [{clause, 1, [{integer, 1, 0}], [],
              [{op, 1, '+', {op, 1, '*', X, {integer, 1, J}}, {integer, 1, I}}]},
             {clause, 1, [{integer, 1, 1}], [],
              [{op, 1, '*', {op, 1, '+', X, {integer, 1, J}}, {integer, 1, I}}]},
             {clause, 1, [{var, 1, '_'}], [],
              [{op, 1, '-', {op, 1, '-', X, {integer, 1, J}}, {integer, 1, I}}]}]},
    {function, 1, name(J), 1, [{clause, 1, [X], [], [Body]}]}.
