#!/bin/sh
# record.sh - record the sample traces of docs/sim.md again, from the JITs
# installed here: LuaJIT (tests/e2e/engines/jit.lua), PCRE2's JIT (pcre2test on
# patterns generated below) and node (V8); and, served as the preload serves
# by default, Guile 3 (tests/e2e/engines/jit.scm) and LuaJIT on
# bench/engines/lua_bigcode.lua, whose heap chunks show the grow rule
# (docs/sim.md), with the preload's own report of the same run.  Usage, from the build tree:
#   sh ../sim/traces/record.sh tools/hugeperm ../sim/traces
# The traces are what the programs asked for (hugeperm record serves
# nothing), so they differ a little from run to run and machine to machine.
set -eu
tool=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
out=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
engines=$here/../../tests/e2e/engines
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$tool" record -o "$out/luajit.hpt" -- luajit "$engines/jit.lua" 400 > /dev/null

# 60 patterns of 50..600 alternatives: JIT code from 32 KiB to 384 KiB, each
# pattern compiled, matched and freed in turn.
awk 'BEGIN {
	srand(7); print "#pattern jitverify"
	for (i = 0; i < 60; i++) {
		n = 50 * (i % 12 + 1); alt = ""
		for (k = 0; k < n; k++) {
			w = ""
			for (c = 0; c < 5; c++) w = w substr("abcdefgh", int(rand() * 8) + 1, 1)
			alt = alt (k ? "|" : "") w k
		}
		printf "/(?:%s)+x%d/\n    abcde1x%d\n\n", alt, i, i
	}
}' > "$tmp/patterns.txt"
"$tool" record -o "$out/pcre2.hpt" -- pcre2test -jit "$tmp/patterns.txt" > /dev/null

# 200 functions compiled by V8 and called until optimised.
cat > "$tmp/fns.js" <<'JS'
let s = 0;
for (let i = 0; i < 200; i++) {
	const f = new Function('x', 'return x * ' + i + ' + ' + (i % 7));
	for (let j = 0; j < 2000; j++) s += f(j);
}
console.log(s);
JS
(cd "$tmp" && "$tool" record -o "$out/node.hpt" -- node fns.js > /dev/null)

# Served as by default, so that the preload's report (printed) is of the run
# the trace is: its areas and blocks against the simulator's (docs/sim.md).
report() { sed -n 's/^  \(served\|kernel\): */# \1 /p; s/^  blocks  *\([0-9]*\)$/# blocks \1/p'; }
HUGEPERM_PRELOAD_REPORT=1 "$tool" record --serve exec,areas,reservations -o "$out/guile.hpt" -- \
	guile --no-auto-compile "$engines/jit.scm" 40 2>&1 > /dev/null | report
HUGEPERM_PRELOAD_REPORT=1 "$tool" record --serve exec,areas,reservations \
	-o "$out/luajit-bigcode.hpt" -- luajit -Omaxtrace=65000 -Omaxmcode=262144 \
	"$here/../../bench/engines/lua_bigcode.lua" 1500 40 3000 4 2>&1 > /dev/null | report
