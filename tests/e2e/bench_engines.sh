#!/bin/sh
# bench_engines.sh - make bench-engines cannot rot: bench/engines.py runs
# two of its workloads in their small variants, one timed pair each, plain
# and preloaded; every run's output is the expected one, the preload was
# loaded and served the engine's code, peak RSS was measured both ways; an
# engine missing from PATH is a "not installed" row, not an error; the
# pair ratios and their interval are right; the
# table lands between the markers of a results file, and a file without
# them is left alone.  Timings are not checked here.
set -u
srcdir=${srcdir:-..}
src=$(cd "$srcdir" && pwd)
engines=$src/bench/engines.py
. "$srcdir/tests/lib/tap.sh"
echo "1..12"

case "${HP_LDFLAGS:-}" in *sanitize*)
	skip 12 "the preload is tested in the plain build"
	exit 0 ;;
esac
if ! command -v luajit >/dev/null 2>&1 || ! command -v pcre2grep >/dev/null 2>&1; then
	skip 12 "needs luajit and pcre2grep (apt-get install luajit pcre2-utils)"
	exit 0
fi
json() { python3 -c "import json,sys; d={r['name']: r for r in json.load(open(sys.argv[1]))}; print($2)" "$1"; }

python3 "$engines" --quick --rounds 1 --only luajit-flips,pcre2grep . "$src" "$tmp/out" \
	> "$tmp/log" 2>&1
rc=$?
sed -n 's/^| \(luajit\|pcre2\)/# | \1/p' "$tmp/log"
check "engines.py --quick --rounds 1 ran luajit-flips and pcre2grep (exit $rc)" \
	'[ $rc -eq 0 ] && [ -s "$tmp/out/engines.json" ] && grep -q "^| pcre2grep" "$tmp/out/engines.md"'
ok=$(json "$tmp/out/engines.json" 'all(r["same_output"] and r["expected"] for r in d.values())')
check "both ways, every run printed the expected output ($ok)" '[ "$ok" = True ]'
set -- $(json "$tmp/out/engines.json" 'd["luajit-flips"]["served"]["exec"], d["pcre2grep"]["served"]["exec"]')
lj=${1:-0} re=${2:-0}
check "the preload was loaded and served their code ($lj JIT areas, $re RWX mappings)" \
	'[ "$lj" -gt 0 ] && [ "$re" -gt 0 ]'
# The fresh blocks the warm-up run's reports gave, and their time, in the
# row and its column: a served JIT's code is on at least one fresh block.
set -- $(json "$tmp/out/engines.json" 'd["pcre2grep"]["served"]["fresh_blocks"], d["pcre2grep"]["served"]["fresh_ms"] > 0')
fb=${1:-0} fms=${2:-False}
check "the fresh 2 MiB blocks and their time, from the reports ($fb blocks, time > 0: $fms)" \
	'[ "$fb" -ge 1 ] && [ "$fms" = True ] && grep -q "^| pcre2grep .* | $fb: [0-9.]* ([0-9.]*%); [0-9.]* | " "$tmp/out/engines.md"'
pr=$(json "$tmp/out/engines.json" 'len(d["pcre2grep"]["pairs"]["ratios"]) == 1 and d["pcre2grep"]["pairs"]["faster"] in (0, 1)')
check "the timed pair's ratio is in the row ($pr)" '[ "$pr" = True ] && grep -q "^| pcre2grep .*x \[.*\], [01] of 1 |" "$tmp/out/engines.md"'
# Order statistics: 7 pairs give min-max (1 - 2/128), 11 the 2nd to the
# 10th (1 - 2*12/2048); 5 pairs have no 95% interval: min-max at 93.75%.
iv=$(python3 -c "
import sys; sys.argv = ['x']; sys.path.insert(0, '$src/bench'); import engines
m = engines.median_interval
print(m([7, 1, 6, 2, 5, 3, 4]), m(list(range(11, 0, -1))), m([5, 4, 3, 2, 1]))")
check "the median pair ratio's interval ($iv)" \
	'[ "$iv" = "(4, 1, 7, 0.984375) (6, 2, 10, 0.98828125) (3, 1, 5, 0.9375)" ]'
rss=$(json "$tmp/out/engines.json" 'min(r[m]["maxrss_kb"] for r in d.values() for m in ("plain", "preload"))')
check "peak RSS measured both ways (smallest $rss KiB)" '[ "${rss:-0}" -gt 500 ]'

# Both runs of a pair see environments of one size (count and bytes), the
# plain one (and both sides of an A/A row) with nothing preloaded: the size
# of the environment alone moved Ruby's time by up to 5-7% here.  Also
# with a setting shorter than a pad's name, and under an outer LD_PRELOAD
# and an outer variable that a setting overrides.
envs=$(python3 -c "
import os, sys, tempfile; sys.argv = ['x']; sys.path.insert(0, '$src/bench'); import engines
r = engines.Runner('.', '')
w = tempfile.mkdtemp(dir='$tmp')
prog = ['python3', '-c', 'import os; e = os.environb; print(len(e), sum(len(k) + len(v) + 2 for k, v in e.items()), int(b\"hugeperm\" in open(\"/proc/self/maps\", \"rb\").read()))']
for outer in ({}, {'HUGEPERM_PRELOAD_FLIP': 'rwx', 'LD_PRELOAD': 'libc.so.6'}):
    os.environ.update(outer)
    for pe in (None, {'HUGEPERM_PRELOAD_FLIP': 'exact'}, {'X': '1'}):
        for s in (False, True):
            print(*(r.run(prog, p, w, sample=s, preload_env=pe, control=c)['out'].strip().replace(' ', ':')
                    for p, c in ((False, False), (True, False), (True, True))))")
echo "$envs" | sed 's/^/# plain, preloaded, A\/A (count:bytes:loaded): /'
same=$(echo "$envs" | awk '{ split($1, a, ":"); split($2, b, ":"); split($3, c, ":");
	if (a[1] != b[1] || a[2] != b[2] || a[1] != c[1] || a[2] != c[2] || a[3] != 0 || b[3] != 1 || c[3] != 0) bad++ }
	END { print NR == 12 && !bad }')
check "a pair's environments are one size; the plain and A/A runs load nothing" '[ "$same" = 1 ]'

# An engine that is not on PATH: a row that says so, and the rest measured.
mkdir "$tmp/bin"
ln -s "$(command -v env)" "$(command -v pcre2grep)" "$tmp/bin/"
py=$(python3 -c 'import sys; print(sys.executable)')
PATH=$tmp/bin "$py" "$engines" --quick --rounds 1 \
	--only luajit-flips,pcre2grep . "$src" "$tmp/out2" > "$tmp/log2" 2>&1
rc=$?
check "without luajit on PATH: a \"not installed\" row, pcre2grep still measured (exit $rc)" \
	'[ $rc -eq 0 ] && grep -q "^| luajit-flips | not installed (luajit)" "$tmp/out2/engines.md" &&
	 grep -q "^| pcre2grep | [0-9]" "$tmp/out2/engines.md"'

# The table between the markers; a file without them: an error, unchanged.
printf 'head\n<!-- bench-engines: begin (x) -->\nold\n<!-- bench-engines: end -->\ntail\n' \
	> "$tmp/r.md"
printf 'no markers\n' > "$tmp/bare.md"
python3 -c "
import sys; sys.argv = ['x']; sys.path.insert(0, '$src/bench'); import engines
engines.replace_marked('$tmp/r.md', 'new table\n')" 2>&1 | sed 's/^/# /'
check "the table is written between the bench-engines markers" \
	'[ "$(cat "$tmp/r.md")" = "$(printf "head\n<!-- bench-engines: begin (x) -->\nnew table\n<!-- bench-engines: end -->\ntail")" ]'
python3 -c "
import sys; sys.path.insert(0, '$src/bench'); import engines
engines.replace_marked('$tmp/bare.md', 'new table\n')" > "$tmp/err" 2>&1
rc=$?
check "a results file without the markers: an error naming it, the file unchanged" \
	'[ $rc -ne 0 ] && grep -q "no bench-engines markers" "$tmp/err" && [ "$(cat "$tmp/bare.md")" = "no markers" ]'

# make bench-results rewrites docs/bench-results.md whole: the section that
# make bench-engines wrote stays, and the README keeps both excerpts.
mkdir -p "$tmp/rec/docs"
cp "$src/README.md" "$tmp/rec/"
printf '# t\n\n## Real JITs with and without the preload\n\n%s\nengines table\n%s\n' \
	'<!-- bench-engines: begin (x) -->' '<!-- bench-engines: end -->' > "$tmp/rec/docs/r.md"
printf '# hugeperm benchmarks\n\n## Targets\n\n| target | measured | |\n|---|---:|---|\n| t | 1 | met |\n\n' \
	> "$tmp/summary.md"
python3 "$src/bench/report.py" --record "$tmp/rec/docs/r.md" --srcdir "$tmp/rec" "$tmp/summary.md" \
	> "$tmp/err" 2>&1
rc=$?
check "report.py --record rewrites the file and keeps the engines section (exit $rc)" \
	'[ $rc -eq 0 ] && grep -q "^### Targets" "$tmp/rec/docs/r.md" && grep -q "^engines table$" "$tmp/rec/docs/r.md" &&
	 grep -q "bench-engines: begin" "$tmp/rec/README.md" && grep -q "^| t | 1 | met |" "$tmp/rec/README.md"'
