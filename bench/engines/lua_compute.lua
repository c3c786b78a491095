-- lua_compute.lua - compute-heavy with few traces: the spectral norm of an
-- N x N matrix (the Computer Language Benchmarks Game's kernel), a handful
-- of loops that LuaJIT compiles once and then runs for seconds.
-- Usage: luajit lua_compute.lua N
local N = tonumber(arg[1]) or 1000
local function A(i, j)
  local ij = i + j - 1
  return 1.0 / (ij * (ij - 1) * 0.5 + i)
end
local function At(i, j) return A(j, i) end
-- y = M x, for M = A or its transpose At.
local function Mv(M, x, y, n)
  for i = 1, n do
    local a = 0
    for j = 1, n do a = a + x[j] * M(i, j) end
    y[i] = a
  end
end
local function AtAv(x, y, t, n) Mv(A, x, t, n); Mv(At, t, y, n) end
local u, v, t = {}, {}, {}
for i = 1, N do u[i] = 1 end
for _ = 1, 10 do AtAv(u, v, t, N); AtAv(v, u, t, N) end
local vBv, vv = 0, 0
for i = 1, N do
  local ui, vi = u[i], v[i]
  vBv = vBv + ui * vi; vv = vv + vi * vi
end
print(string.format("result %0.9f", math.sqrt(vBv / vv)))
