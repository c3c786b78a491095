#!/bin/sh
# engines_fixed.sh - the engines whose code memory the preload serves by
# fixed.c and thp.c, unmodified Debian packages: Ruby's YJIT (a 256 MiB
# MAP_FIXED_NOREPLACE range, THP switched off by Ruby itself) and Mono (RWX
# MAP_32BIT chunks).  Plain and under the preload: the same output, and
# while each runs, >= 90% of its JIT code huge-mapped: Mono's anonymous
# executable memory in /proc/PID/smaps; YJIT's code pages, found from its
# own code sizes, by PAGEMAP_SCAN, and its page flips costing a few splits
# and collapses, not one each.  And Erlang: its 1 GiB literal area is
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
. "$srcdir/tests/lib/jit_held.sh"
echo "1..10"

case "${HP_LDFLAGS:-}" in *sanitize*)
	skip 10 "the preload is tested in the plain build"
	exit 0 ;;
esac

# YJIT's code in process $1, whose inline and outlined code are $2 and $3
# bytes long (RubyVM::YJIT.runtime_stats): YJIT 3.1 writes inline code from
# the start of its range and outlined code from its middle.  The range is
# the longest run of anonymous executable VMAs (with the RW page being
# written, if any); it starts at the run's first page that is not all zero
# (pages of ours before it, in its first block, read zero).  Prints
# "HUGE_KB PRESENT_KB" of the code's pages, by PAGEMAP_SCAN (PMD-mapped).
yjit_code() {
	python3 - "$@" <<'PY'
import ctypes, fcntl, re, struct, sys
pid, inline, outlined = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
BLOCK, PAGE = 2 << 20, 4096
best = run = None
for line in open("/proc/%s/maps" % pid):
    m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$", line)
    lo, hi, perm = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
    anon = m.group(4) == "0" and (m.group(5) == "" or m.group(5).startswith("[anon:"))
    part = anon and ("x" in perm or ("w" in perm and hi - lo <= 65536))
    if part and run and run[1] == lo:
        run = (run[0], hi)
    elif part and "x" in perm:
        run = (lo, hi)
    else:
        run = None
    if run and (not best or run[1] - run[0] > best[1] - best[0]):
        best = run
mem = open("/proc/%s/mem" % pid, "rb", buffering=0)
mem.seek(best[0])
head = mem.read(BLOCK)
base = best[0] + next(i for i in range(0, BLOCK, PAGE) if head[i:i + PAGE].strip(b"\0"))
half = 128 << 20
PRESENT, HUGE = 1 << 3, 1 << 6
IOC = (3 << 30) | (96 << 16) | (ord("f") << 8) | 16  # PAGEMAP_SCAN
f = open("/proc/%s/pagemap" % pid, "rb", buffering=0)
huge = present = 0
for lo, hi in ((base, base + inline), (base + half, base + half + outlined)):
    lo, hi = lo & ~(PAGE - 1), (hi + PAGE - 1) & ~(PAGE - 1)
    vec = (ctypes.c_uint64 * (3 * 1024))()
    arg = bytearray(struct.pack("12Q", 96, 0, lo, hi, 0, ctypes.addressof(vec), 1024, 0, 0,
                                PRESENT, 0, PRESENT | HUGE))
    for i in range(fcntl.ioctl(f, IOC, arg)):
        kb = (vec[3 * i + 1] - vec[3 * i]) >> 10
        present += kb
        huge += kb if vec[3 * i + 2] & HUGE else 0
print(huge, present)
PY
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
	# Only the blocks YJIT writes code in take huge pages (the rest of its
	# range holds traps, on small pages as without the preload), once they
	# have been quiet a while: its code itself, page by page, and how many
	# splits and collapses that took (a burst each, not a flip each).
	measure=yjit_code settle=150 held "$tmp/rb.wait2" "$tool" run $serve -- ruby --yjit "$rb" 3000 wait
	echo "# ruby --yjit: $huge of $rss KiB of its code huge-mapped while it runs (PAGEMAP_SCAN, after waiting $i tenths of a second for quiet blocks to collapse)"
	check "ruby --yjit: >= 90% of its JIT code huge-mapped while it runs ($huge of $rss KiB)" \
		'[ "$rss" -ge 256 ] && [ $((huge * 10)) -ge $((rss * 9)) ]'
	splits=$(python3 -c 'import json,sys; print(sum(p["hugeperm"]["splits"] for p in json.load(open(sys.argv[1]))))' "$tmp/rb.json")
	collapses=$(python3 -c 'import json,sys; print(sum(p["hugeperm"]["collapses"] for p in json.load(open(sys.argv[1]))))' "$tmp/rb.json")
	check "ruby --yjit: its thousands of page flips split and collapsed blocks a few times ($splits splits, $collapses collapses)" \
		'[ "$splits" -le 16 ] && [ "$collapses" -le 16 ]'
else
	skip 5 "ruby with YJIT is not installed (apt-get install ruby)"
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
