#!/bin/sh
# engines_fixed.sh - the engines whose code memory the preload serves by
# fixed.c and thp.c, unmodified Debian packages: Ruby's YJIT (a 256 MiB
# MAP_FIXED_NOREPLACE range, THP switched off by Ruby itself) and Mono (RWX
# MAP_32BIT chunks).  Plain and under the preload: the same output, and
# while each runs, >= 90% of its JIT code (its anonymous executable memory)
# huge-mapped in /proc/PID/smaps.  And Erlang: its 1 GiB literal area is
# data, PROT_NONE|MAP_NORESERVE; it runs the same, and none of our memory
# is executable (the area stays the kernel's: tests/e2e/reserve.sh).
# Ruby's range is served only with --serve ...,fixed (opt-in: YJIT's page
# flips make it slower, docs/preload.md); by default it is the kernel's.
# An engine not installed is skipped.
set -u
srcdir=${srcdir:-..}
tool=$(pwd)/tools/hugeperm
export HUGEPERM_PRELOAD_LIB=$(pwd)/.libs/libhugeperm-preload.so
engines=$(cd "$srcdir/tests/e2e/engines" && pwd)
. "$srcdir/tests/lib/tap.sh"
echo "1..9"

case "${HP_LDFLAGS:-}" in *sanitize*)
	skip 9 "the preload is tested in the plain build"
	exit 0 ;;
esac

# Anonymous executable memory of process $1, by /proc/PID/smaps: prints
# "HUGE_KB RSS_KB".
jit_smaps() {
	python3 - "$1" <<'PY'
import re, sys
rss = huge = 0; cur = False
for line in open("/proc/%s/smaps" % sys.argv[1]):
    m = re.match(r"^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ (\d+)\s*(.*)$", line)
    if m:
        name = m.group(3)
        cur = "x" in m.group(1) and m.group(2) == "0" and (name == "" or name.startswith("[anon:"))
    elif cur and line.startswith("Rss:"):
        rss += int(line.split()[1])
    elif cur and line.startswith("AnonHugePages:"):
        huge += int(line.split()[1])
print(huge, rss)
PY
}

# Run "$@" (a program that prints "pid P" and waits for a line on stdin)
# under the preload; read its smaps then; let it finish.  Output to $1;
# sets $huge and $rss.
held() {
	out=$1
	shift
	mkfifo "$out.in"
	"$@" < "$out.in" > "$out" 2>&1 &
	job=$!
	exec 3> "$out.in"
	i=0
	while ! grep -q '^pid [0-9]*$' "$out" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	pid=$(sed -n 's/^pid \([0-9]*\)$/\1/p' "$out" | head -1)
	set -- $(jit_smaps "${pid:-0}" 2>/dev/null)
	huge=${1:-0} rss=${2:-0}
	echo >&3
	exec 3>&-
	wait $job
}

# --- Ruby's YJIT -------------------------------------------------------------
if command -v ruby >/dev/null 2>&1 && ruby --yjit -e 'exit(defined?(RubyVM::YJIT) && RubyVM::YJIT.enabled? ? 0 : 1)' 2>/dev/null; then
	rb=$engines/yjit.rb
	ruby --yjit "$rb" > "$tmp/rb.plain"
	fixed_ranges() { python3 -c 'import json,sys; print(sum(p["preload"]["fixed_ranges"] for p in json.load(open(sys.argv[1]))))' "$1"; }
	"$tool" run --json -o "$tmp/rb0.json" -- ruby --yjit "$rb" > "$tmp/rb0.hp"
	fixed=$(fixed_ranges "$tmp/rb0.json")
	check "ruby --yjit by default: the same output, its code range left to the kernel ($fixed served)" \
		'cmp -s "$tmp/rb.plain" "$tmp/rb0.hp" && [ "$fixed" = 0 ]'
	serve="--serve exec,areas,reservations,fixed"
	"$tool" run $serve --json -o "$tmp/rb.json" -- ruby --yjit "$rb" > "$tmp/rb.hp"
	check "ruby --yjit --serve ...,fixed: the same output under the preload ($(head -1 "$tmp/rb.plain"))" \
		'cmp -s "$tmp/rb.plain" "$tmp/rb.hp"'
	fixed=$(fixed_ranges "$tmp/rb.json")
	check "ruby --yjit --serve ...,fixed: its code range was served at its address ($fixed)" '[ "$fixed" -ge 1 ]'
	held "$tmp/rb.wait" "$tool" run $serve -- ruby --yjit "$rb" 3000 wait
	echo "# ruby --yjit: $huge of $rss KiB of JIT memory huge-mapped while it runs"
	check "ruby --yjit: >= 90% of its JIT code huge-mapped while it runs ($huge of $rss KiB)" \
		'[ "$rss" -ge 65536 ] && [ $((huge * 10)) -ge $((rss * 9)) ]'
else
	skip 4 "ruby with YJIT is not installed (apt-get install ruby)"
fi

# --- Mono ----------------------------------------------------------------------
if command -v mono >/dev/null 2>&1 && command -v mcs >/dev/null 2>&1; then
	mcs -out:"$tmp/Jit.exe" "$engines/Jit.cs" > "$tmp/mcs.log" 2>&1
	mono "$tmp/Jit.exe" > "$tmp/cs.plain"
	"$tool" run --json -o "$tmp/cs.json" -- mono "$tmp/Jit.exe" > "$tmp/cs.hp"
	check "mono: the same output under the preload ($(cat "$tmp/cs.plain"))" \
		'[ -s "$tmp/cs.plain" ] && cmp -s "$tmp/cs.plain" "$tmp/cs.hp"'
	low=$(python3 -c 'import json,sys; print(sum(p["preload"]["low_32bit"] for p in json.load(open(sys.argv[1]))))' "$tmp/cs.json")
	check "mono: its MAP_32BIT code chunks were served below 2 GiB ($low)" '[ "$low" -ge 2 ]'
	held "$tmp/cs.wait" "$tool" run -- mono "$tmp/Jit.exe" wait
	echo "# mono: $huge of $rss KiB of JIT memory huge-mapped while it runs"
	check "mono: >= 90% of its JIT code huge-mapped while it runs ($huge of $rss KiB)" \
		'[ "$rss" -ge 512 ] && [ $((huge * 10)) -ge $((rss * 9)) ]'
else
	skip 3 "mono is not installed (apt-get install mono-runtime mono-mcs)"
fi

# --- Erlang: the literal area is data ------------------------------------------
if command -v erl >/dev/null 2>&1; then
	ev='io:format("~p~n", [lists:sum([X * X || X <- lists:seq(1, 100000)])]), halt().'
	erl -noshell -eval "$ev" > "$tmp/erl.plain" 2>&1
	"$tool" run --json -o "$tmp/erl.json" -- erl -noshell -eval "$ev" > "$tmp/erl.hp" 2>&1
	check "erl: the same output under the preload ($(cat "$tmp/erl.plain"))" \
		'cmp -s "$tmp/erl.plain" "$tmp/erl.hp"'
	# The literal area holds no code: nothing in it is executable.
	x=$(python3 -c 'import json,sys; print(sum(p["preload"]["code_bytes"] for p in json.load(open(sys.argv[1]))))' "$tmp/erl.json")
	check "erl: no executable memory of ours (its literal area is not code: $x bytes)" '[ "$x" = 0 ]'
else
	skip 2 "erlang is not installed (apt-get install erlang-base)"
fi
