-- lua_loops.lua - N generated hot loops, each its own function with its own
-- constants (one trace or more each), run ROUNDS times over ITERS
-- iterations.  With many loops and few iterations (3,000 x 60, 15 rounds)
-- it is flip-heavy: LuaJIT's default 1,000-trace limit is passed over and
-- over, every trace flush and every new trace a protection change of its
-- machine code; with fewer loops and long runs (600 x 20,000) it is many
-- traces that then run long.  Usage: luajit lua_loops.lua N ROUNDS ITERS
local N = tonumber(arg[1]) or 3000
local ROUNDS = tonumber(arg[2]) or 15
local ITERS = tonumber(arg[3]) or 60
local fs = {}
for j = 1, N do
  fs[j] = load("return function(n) local s = 0 for i = 1, n do s = s + (i % " ..
    (j % 97 + 2) .. ") * " .. j .. " end return s end")()
end
local total = 0
for round = 1, ROUNDS do
  for j = 1, N do total = total + fs[j](ITERS) end
end
print("result " .. total)
