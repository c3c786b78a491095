-- jit.lua - a LuaJIT workload with a large code footprint: N distinct hot
-- functions, each compiled to its own traces, run ROUNDS times (20) over
-- ITERS iterations (60).  Prints the result, and with "wait" how many
-- traces have machine code, the address of one trace's code and this
-- process's pid, then waits for a line on stdin.  bench/engines.py runs it
-- flip-heavy (3,000 loops x 15 rounds: LuaJIT's 1,000-trace limit passed
-- over and over, every flush and new trace a protection change) and with
-- long runs (600 x 20,000 iterations).
-- Usage: luajit jit.lua N [wait|run] [ROUNDS] [ITERS]
local N = tonumber(arg[1]) or 400
local ROUNDS = tonumber(arg[3]) or 20
local ITERS = tonumber(arg[4]) or 60
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
if arg[2] == "wait" then
  local util = require("jit.util")
  local traces, addr = 0, nil
  for tr = 1, 100000 do
    local mc, a = util.tracemc(tr)
    if a then traces = traces + 1; addr = addr or a end
  end
  local pid = io.open("/proc/self/stat"):read("*l"):match("^(%d+)")
  print(string.format("traces %d mcode %d pid %s", traces, addr or 0, pid))
  io.stdout:flush()
  io.read()
end
