-- lua_flips.lua - LuaJIT's flip-heavy workload (issue 16): N generated hot
-- loops, each its own trace, run for R rounds.  Their code outgrows
-- LuaJIT's mcode limit, so traces are flushed and compiled again every
-- round: two mprotect calls of a 64 KiB area per trace, thousands a second.
-- Usage: luajit lua_flips.lua [N [R]]; prints the result and the trace count.
local N = tonumber(arg[1]) or 3000
local R = tonumber(arg[2]) or 15
local fs = {}
for j = 1, N do
  local src = "return function(n) local s, t = 0, " .. j .. " for i = 1, n do " ..
    "if i % " .. (j % 7 + 2) .. " == 0 then s = s + t * i else s = s - (i % " ..
    (j % 97 + 2) .. ") end end for i = 1, n do s = s + i * " .. (j % 13 + 1) ..
    " end return s end"
  fs[j] = load(src)()
end
local total = 0
for round = 1, R do
  for j = 1, N do total = total + fs[j](80) end
end
print("result " .. total)
