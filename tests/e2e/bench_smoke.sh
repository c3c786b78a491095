#!/bin/sh
# bench_smoke.sh - the benchmark harness works end to end: hpbench runs a
# few fast cases through the Google Benchmark shim, writes JSON, and
# report.py turns it into a summary with its targets table and plots.
# Timings are not checked here: performance claims live in make bench.
set -u
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "1..3"
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
