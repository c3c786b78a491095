-- lua_bigcode.lua - hot code far larger than the iTLB reaches: N distinct
-- functions, each a loop whose body is K statements with their own
-- constants (one trace of a few KiB each: ~25 MiB of machine code for
-- 8,000 x 40), all compiled first in order, then called CALLS times in a
-- fixed pseudo-random order for ITERS iterations each, so that what runs
-- jumps all over the code.  (Called in a random order from the start,
-- LuaJIT compiles only a few hundred of them.)  Needs -Omaxtrace=65000
-- -Omaxmcode=262144, or the traces are flushed at 1,000.
-- Usage: luajit -Omaxtrace=65000 -Omaxmcode=262144 lua_bigcode.lua N K CALLS ITERS [wait]
-- (wait: once compiled, print "traces N pid P" and wait for a line on stdin)
local N = tonumber(arg[1]) or 8000
local K = tonumber(arg[2]) or 40
local CALLS = tonumber(arg[3]) or 1500000
local ITERS = tonumber(arg[4]) or 4
local band = bit.band
local fs = {}
for j = 1, N do
  local body = {}
  for k = 1, K do
    body[k] = string.format("s = bit.band(s * %d + %d, 1048575)", (j * 7 + k) % 89 + 2,
      j * 31 + k)
  end
  fs[j] = load("return function(n, s) for i = 1, n do " .. table.concat(body, " ") ..
    " end return s end")()
end
local total = 0
for _ = 1, 2 do
  for j = 1, N do total = band(total + fs[j](60, j), 1073741823) end
end
if arg[5] == "wait" then -- held once compiled: tests/e2e/engines.sh reads /proc/PID
  print(string.format("traces %d pid %s", N, io.open("/proc/self/stat"):read("*l"):match("^(%d+)")))
  io.stdout:flush()
  io.read("*l")
end
local seed = 12345
for c = 1, CALLS do
  seed = (seed * 1103515245 + 12345) % 2147483648
  total = band(total + fs[seed % N + 1](ITERS, c), 1073741823)
end
print("result " .. total)
