#!/bin/sh
# bench_smoke.sh - the benchmark harness works end to end: hpbench runs a
# few fast cases through the Google Benchmark shim, writes JSON, and
# report.py turns it into a summary with its targets table and plots.
# bench/preload_calls (make bench-preload) runs a few rounds under the
# preload (fixed ranges served, for its flip_fixed case) and prints its
# cases.  bench/code_pairs (packed code against mimalloc, alternating
# batches) prints a line a thread, which report.py puts in section 8 and
# reads the packed-code targets from.  bench/rounds.py times one command
# under several environments and compares them round by round.  Timings are not checked here: performance
# claims live in make bench and make bench-preload.
set -u
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "1..9"
if HPBENCH_QUICK=1 ./bench/hpbench --benchmark_filter='pages/.*/1$|patch/hp_write$|collapse/shmem' \
	--benchmark_min_time=0.01 --benchmark_out_format=json --benchmark_out="$out/b.json" \
	>"$out/run.log" 2>&1; then
	echo "ok 1 - hpbench runs the selected cases"
else
	echo "not ok 1 - hpbench runs the selected cases"; sed 's/^/# /' "$out/run.log"
fi
if python3 "$srcdir/bench/report.py" "$out/b.json" "$out" >"$out/report.log" 2>&1; then
	echo "ok 2 - report.py reads the JSON"
else
	echo "not ok 2 - report.py reads the JSON"; sed 's/^/# /' "$out/report.log"
fi
if grep -q "^## Targets" "$out/summary.md" && grep -q "pages/\|hugeperm" "$out/summary.md" &&
	[ -s "$out/pages.svg" ]; then
	echo "ok 3 - summary.md has the targets table, pages.svg was drawn"
else
	echo "not ok 3 - summary.md has the targets table, pages.svg was drawn"
fi
if ./bench/code_pairs 1 3 >"$out/code_pairs.txt" 2>"$out/cp.err" &&
	./bench/code_pairs 2 3 >>"$out/code_pairs.txt" 2>>"$out/cp.err" &&
	python3 "$srcdir/bench/report.py" "$out/b.json" "$out" >"$out/report.log" 2>&1 &&
	[ "$(awk '$1 == "threads" && $5 == "hugeperm_ns" && $9 == "ratio" && $10 > 0' "$out/code_pairs.txt" | wc -l)" = 3 ] &&
	grep -q "^| 2 | 1 | " "$out/summary.md" &&
	grep -q "^| 8: packed code alloc+free <= 1.5x mimalloc (2 threads, the slower thread) |" "$out/summary.md"; then
	echo "ok 4 - code_pairs times 1 and 2 threads; report.py puts its rows and targets in section 8"
else
	echo "not ok 4 - code_pairs times 1 and 2 threads; report.py puts its rows and targets in section 8"
	sed 's/^/# /' "$out/code_pairs.txt" "$out/cp.err" "$out/report.log"
fi
echo "threads 1 thread 0 hugeperm_ns 12.0" >"$out/code_pairs.txt"
python3 "$srcdir/bench/report.py" "$out/b.json" "$out" >"$out/report.log" 2>&1
rc_report=$?
./bench/code_pairs 0 >/dev/null 2>"$out/cp.err"
rc_pairs=$?
if [ $rc_report -ne 0 ] && grep -q "not a code_pairs line" "$out/report.log" &&
	[ $rc_pairs -eq 2 ] && grep -q "^usage: code_pairs" "$out/cp.err"; then
	echo "ok 5 - a cut code_pairs line and a bad thread count are errors that say so"
else
	echo "not ok 5 - a cut code_pairs line and a bad thread count are errors that say so"
	sed 's/^/# /' "$out/report.log" "$out/cp.err"
fi
rm -f "$out/code_pairs.txt"
lib=$(pwd)/.libs/libhugeperm-preload.so
case "${HP_LDFLAGS:-}" in *sanitize*)
	echo "ok 6 # SKIP the preload runs in the plain build (a sanitizer runtime must load first)"
	echo "ok 7 # SKIP the preload runs in the plain build"
	exit 0 ;;
esac
if LD_PRELOAD=$lib HUGEPERM_PRELOAD_SERVE=exec,areas,reservations,fixed \
	./bench/preload_calls 4 >"$out/calls.log" 2>&1; then
	echo "ok 6 - bench/preload_calls runs under the preload"
else
	echo "not ok 6 - bench/preload_calls runs under the preload"; sed 's/^/# /' "$out/calls.log"
fi
cases=$(awk '$1 == "case" && $3 == "served_ns" && $5 == "plain_ns" && $7 == "ratio" { print $2 }' \
	"$out/calls.log" | tr '\n' ' ')
if [ "$cases" = "flip_whole flip_sub flip_fixed pass_protect pass_map mmap munmap mmap_touch munmap_code " ] &&
	grep -q "^# huge-mapped pages of the 2 MiB blocks flipped: served 512," "$out/calls.log"; then
	echo "ok 7 - it times every case against the plain call, on a huge-mapped served block"
else
	echo "not ok 7 - it times every case against the plain call ($cases)"; sed 's/^/# /' "$out/calls.log"
fi
rounds="$srcdir/bench/rounds.py"
if python3 "$rounds" -n 3 --ref plain --env plain= --env other="HP_SMOKE=1" -- /bin/echo hi \
	>"$out/rounds.log" 2>&1 &&
	[ "$(awk '$1 == "plain" || $1 == "other"' "$out/rounds.log" | wc -l)" = 2 ] &&
	grep -q "^other/plain wall per-round median [0-9.]* \[[0-9.]*-[0-9.]*\], ratio of medians [0-9.]*$" \
		"$out/rounds.log"; then
	echo "ok 8 - bench/rounds.py times two environments in rounds and gives their per-round ratio"
else
	echo "not ok 8 - bench/rounds.py times two environments in rounds"; sed 's/^/# /' "$out/rounds.log"
fi
bad=0
python3 "$rounds" -n 2 --ref nope --env plain= -- /bin/true 2>"$out/r1" && bad=1
grep -q "ref nope names no --env (EINVAL)" "$out/r1" || bad=1
python3 "$rounds" -n 0 --env plain= -- /bin/true 2>"$out/r2" && bad=1
grep -q "at least one round (EINVAL)" "$out/r2" || bad=1
python3 "$rounds" -n 1 --env a= --env b="PREFIX=/bin/echo" -- /bin/echo hi >"$out/r3" 2>&1 && bad=1
grep -q "printed something else" "$out/r3" || bad=1
python3 "$rounds" -n 1 --env a= --env a= -- /bin/true 2>>"$out/r2" && bad=1
python3 "$rounds" -n 1 --env =X=1 -- /bin/true 2>>"$out/r2" && bad=1
[ "$(grep -c "each needs a name of its own (EINVAL)" "$out/r2")" = 2 ] || bad=1
python3 "$rounds" -n 1 --env a= -- /bin/false 2>"$out/r4" && bad=1
grep -q "/bin/false failed (exit 1)" "$out/r4" || bad=1
if [ $bad = 0 ]; then
	echo "ok 9 - rounds.py refuses an unknown --ref, no rounds, nameless or doubled --env, runs that print differently or fail, and says so"
else
	echo "not ok 9 - rounds.py refuses bad input and says so"; cat "$out/r1" "$out/r2" "$out/r3" "$out/r4" | sed 's/^/# /'
fi
