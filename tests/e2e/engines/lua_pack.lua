-- lua_pack.lua - many traces in many mcode areas, then held: N distinct
-- loops of K statements each (a trace of a few KiB each), compiled in
-- order; then prints "traces T pid P" and waits for a line on stdin (the
-- test reads /proc/P meanwhile), runs each loop again and prints the
-- result.  tests/e2e/lua_pack.sh runs it plain and under the preload.
-- Needs -Omaxtrace=65000 -Omaxmcode=262144 (else LuaJIT flushes at 1,000).
-- Usage: luajit -Omaxtrace=65000 -Omaxmcode=262144 lua_pack.lua N K
local N = tonumber(arg[1]) or 1500
local K = tonumber(arg[2]) or 40
local band = bit.band
local fs = {}
for j = 1, N do
  local body = {}
  for k = 1, K do
    body[k] = string.format("s = bit.band(s * %d + %d, 1048575)", (j * 5 + k) % 97 + 2,
      j * 17 + k)
  end
  fs[j] = load("return function(n, s) for i = 1, n do " .. table.concat(body, " ") ..
    " end return s end")()
end
local total = 0
for j = 1, N do total = band(total + fs[j](60, j), 1073741823) end
local pid = io.open("/proc/self/stat"):read("*l"):match("^(%d+)")
print(string.format("traces %d pid %s", N, pid))
io.stdout:flush()
io.read("*l")
for j = N, 1, -1 do total = band(total + fs[j](8, j), 1073741823) end
print("result " .. total)
