#!/bin/sh
# sim_cmds.sh - the trace and simulator commands end to end: synth, dump and the
# text form, replay (table, JSON), map (SVG), errors named with their errno;
# HUGEPERM_TRACE from the library and `hugeperm record` from a real JIT;
# the docs' tables as `make sim-table` prints them; and the validation: the
# simulated hugeperm policy's splits and collapses against the kernel's
# (thp_split_pmd, thp_collapse_alloc) when the same trace is replayed for
# real against the library.
set -u
srcdir=${srcdir:-..}
tool=./tools/hugeperm
export HUGEPERM_PRELOAD_LIB=$(pwd)/.libs/libhugeperm-preload.so
n=0
echo "1..36"
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
skip() { i=0; while [ $i -lt "$1" ]; do n=$((n + 1)); i=$((i + 1)); echo "ok $n # SKIP $2"; done; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); p={r['policy']: r for r in d['policies']}; $2" "$1"; }

# synth, dump, the text form
"$tool" synth --seed 3 --units 500 -o "$tmp/s.hpt" 2> /dev/null
"$tool" dump "$tmp/s.hpt" > "$tmp/s.txt"
check "synth: a binary trace, dumped as text (one line per event)" \
	'[ $(grep -vc "^#" "$tmp/s.txt") -gt 1000 ] && head -1 "$tmp/s.txt" | grep -q "source=synth"'
"$tool" replay "$tmp/s.hpt" --format json > "$tmp/bin.json"
"$tool" replay "$tmp/s.txt" --format json > "$tmp/txt.json"
check "replay: the text form gives the same figures as the binary" \
	'[ "$(sed "s/\"trace\": \"[^\"]*\"//" "$tmp/bin.json")" = "$(sed "s/\"trace\": \"[^\"]*\"//" "$tmp/txt.json")" ]'
check "replay --format json: every policy, the same live pages, none ignored" \
	'json "$tmp/bin.json" "sys.exit(0 if len(p) == 8 and len({r[\"live_peak_pages\"] for r in p.values()}) == 1 and all(r[\"ignored\"] == 0 for r in p.values()) else 1)"'
"$tool" replay "$tmp/s.hpt" --policy naive,pack > "$tmp/table"
sed 's/^/# /' "$tmp/table"
check "replay --policy naive,pack: a table of two rows" \
	'[ $(grep -Ec "^(naive|pack) " "$tmp/table") = 2 ]'

# map
"$tool" map "$tmp/s.hpt" --policy migratetype -o "$tmp/map.svg"
check "map: a block map, valid SVG, one row per block" \
	'python3 -c "import sys,xml.dom.minidom as m; d=m.parse(sys.argv[1]); t=[e.firstChild.data for e in d.getElementsByTagName(\"text\")]; sys.exit(0 if sum(1 for x in t if x.endswith((\"PMD\",\"4K \",\"-- \"))) > 1 else 1)" "$tmp/map.svg"'
"$tool" map "$tmp/s.hpt" --coverage -o "$tmp/cov.svg"
check "map --coverage: one curve per policy" \
	'python3 -c "import sys,xml.dom.minidom as m; d=m.parse(sys.argv[1]); sys.exit(0 if len(d.getElementsByTagName(\"polyline\")) == 8 else 1)" "$tmp/cov.svg"'

# errors
"$tool" replay "$tmp/none.hpt" > /dev/null 2> "$tmp/err"; rc=$?
check "replay of a missing file: exit 2, ENOENT" '[ $rc = 2 ] && grep -q "(ENOENT)" "$tmp/err"'
printf 'HPTRACE1 is not quite a trace' > "$tmp/bad.hpt"
"$tool" replay "$tmp/bad.hpt" > /dev/null 2> "$tmp/err"; rc=$?
check "replay of a damaged trace: exit 2, not a trace (EINVAL)" \
	'[ $rc = 2 ] && grep -q "not a trace.*EINVAL" "$tmp/err"'
"$tool" replay "$tmp/s.hpt" --policy naive,frob > /dev/null 2> "$tmp/err"; rc=$?
check "replay --policy frob: exit 2, EINVAL, the policies listed" \
	'[ $rc = 2 ] && grep -q "no policy .frob. (EINVAL); there are: naive" "$tmp/err"'
"$tool" synth --threads 0 -o "$tmp/x.hpt" 2> "$tmp/err"; rc=$?
check "synth --threads 0: exit 2, EINVAL, nothing written" \
	'[ $rc = 2 ] && grep -q "EINVAL" "$tmp/err" && [ ! -e "$tmp/x.hpt" ]'

# the preload's grow rule (preload/grow.c): a hinted area whose hint continues
# a kernel mapping is a heap's next chunk, the kernel's, when the trace holds
# the hints' addresses; without them (version 1 traces) served, as before.
cat > "$tmp/heap.txt" << 'EOF'
# hugeperm trace v2 source=text comm=heap
0.000 1 map 0x7f0000000000 64 rw-
1.000 1 map 0x7f0000040000 32 rw- hint=0x7f0000040000
2.000 1 map 0x7f0000060000 32 rw- hint=0x7f0000060000
3.000 1 map 0x7f1000000000 16 rw- hint=0x7f1000000000
4.000 1 protect 0x7f1000000000 16 r-x
EOF
sed 's/hint=0x[0-9a-f]*/hint/' "$tmp/heap.txt" > "$tmp/heap1.txt"
"$tool" replay "$tmp/heap.txt" --policy hugeperm-block,hugeperm --format json > "$tmp/heap.json"
"$tool" replay "$tmp/heap1.txt" --policy hugeperm-block,hugeperm --format json > "$tmp/heap1.json"
check "replay: heap chunks continuing a kernel mapping go to the kernel, the JIT's area is served" \
	'json "$tmp/heap.json" "b=p[\"hugeperm-block\"]; sys.exit(0 if all(r[\"areas_served\"] == 1 and r[\"heap_chunks_passed\"] == 2 for r in p.values()) and b[\"blocks_peak\"] == 2 else 1)"'
check "... without the hints' addresses, all three served as before (a block more)" \
	'json "$tmp/heap1.json" "b=p[\"hugeperm-block\"]; sys.exit(0 if all(r[\"areas_served\"] == 3 and r[\"heap_chunks_passed\"] == 0 for r in p.values()) and b[\"blocks_peak\"] == 3 else 1)"'
sed 's/hint=0x7f0000060000/hint=0x7f00000600zz/' "$tmp/heap.txt" > "$tmp/badhint.txt"
"$tool" replay "$tmp/badhint.txt" > /dev/null 2> "$tmp/err"; rc=$?
check "replay: a bad hint address: exit 2, EINVAL, naming the line and the value" \
	'[ $rc = 2 ] && grep -q "line 4: bad hint address .0x7f00000600zz.*(EINVAL)" "$tmp/err"'

# Guile's and LuaJIT's traces, recorded served (sim/traces/record.sh): the
# simulator serves the areas the preload served in the same run, gives the
# kernel the heap chunks, and holds served memory in as many blocks
# (docs/sim.md; the preload's report: 0 areas and 4 blocks, 77 and 3).
grown() {
	"$tool" replay "$srcdir/sim/traces/$1.hpt" --policy hugeperm-block --format json > "$tmp/$1.json"
	json "$tmp/$1.json" "r=p['hugeperm-block']; print(r['areas_served'], r['heap_chunks_passed'], r['served_blocks_peak'])"
}
g=$(grown guile)
check "sim/traces/guile.hpt: no area served, 2 heap chunks to the kernel, 4 blocks ($g)" '[ "$g" = "0 2 4" ]'
l=$(grown luajit-bigcode)
check "sim/traces/luajit-bigcode.hpt: 77 areas served, 69 heap chunks to the kernel, 3 blocks ($l)" \
	'[ "$l" = "77 69 3" ]'

# damaged and absurd traces (issue 15 defect 19): exit 2 and the errno named.
# Memory is bounded by 256 MiB of address space; in a sanitizer build (whose
# shadow takes terabytes of it) by 512 MiB resident, which ASan enforces.
bounded() {
	case "${HP_LDFLAGS:-}" in
	*sanitize*) ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}hard_rss_limit_mb=512 "$@" ;;
	*) (ulimit -v 262144 && exec "$@") ;;
	esac
}
python3 -c "import sys; d = bytearray(open(sys.argv[1], 'rb').read()); d[93] ^= 2; open(sys.argv[2], 'wb').write(d)" \
	"$srcdir/sim/traces/pcre2.hpt" "$tmp/flip.hpt"
"$tool" replay "$tmp/flip.hpt" > "$tmp/out" 2> "$tmp/err"; rc=$?
"$tool" map "$tmp/flip.hpt" -o "$tmp/flip.svg" 2>> "$tmp/err"; rc2=$?
check "replay and map of pcre2.hpt with one bit flipped (overlapping maps): exit 0, all policies" \
	'[ $rc = 0 ] && [ $rc2 = 0 ] && [ $(grep -c "^hugeperm" "$tmp/out") = 3 ]'
: > "$tmp/empty.hpt"
"$tool" replay "$tmp/empty.hpt" > /dev/null 2> "$tmp/err"; rc=$?
check "replay of an empty file: exit 2, the file named, EINVAL" \
	'[ $rc = 2 ] && grep -q "empty.hpt: not a trace: empty (EINVAL)" "$tmp/err"'
"$tool" dump "$tmp" > /dev/null 2> "$tmp/err"; rc=$?
check "dump of a directory: exit 2, EISDIR" '[ $rc = 2 ] && grep -q "(EISDIR)" "$tmp/err"'
bounded timeout 20 "$tool" dump /dev/zero > /dev/null 2> "$tmp/err"; rc=$?
check "dump /dev/zero: exit 2 at once, bounded memory, EINVAL" \
	'[ $rc = 2 ] && grep -q "/dev/zero: not a trace.*(EINVAL)" "$tmp/err"'
printf '0.000 1 map 0x7f0000000000 50000000 rw-\n' > "$tmp/50m.txt"
bounded "$tool" replay "$tmp/50m.txt" > /dev/null 2> "$tmp/err"; rc=$?
check "replay of a map of 50M pages: exit 2, EINVAL, bounded memory" \
	'[ $rc = 2 ] && grep -q "maps more than 64 GiB at once (EINVAL)" "$tmp/err"'
printf '0.000 1 map 0x7f0000000000 4000000000 ---\n' > "$tmp/4g.txt"
bounded "$tool" map "$tmp/4g.txt" -o "$tmp/4g.svg" > /dev/null 2> "$tmp/err"; rc=$?
check "map of a map of 4e9 pages: exit 2, EINVAL, bounded memory" \
	'[ $rc = 2 ] && grep -q "maps more than 64 GiB at once (EINVAL)" "$tmp/err"'
printf '0.000 1 map 0xfffffffffffff000 2 rw-\n' > "$tmp/wrap.txt"
"$tool" dump "$tmp/wrap.txt" > /dev/null 2> "$tmp/err"; rc=$?
check "a range past the end of the address space: exit 2, EINVAL" \
	'[ $rc = 2 ] && grep -q "wrap.txt: not a trace: line 1.*(EINVAL)" "$tmp/err"'

# HUGEPERM_TRACE: the library's calls
HUGEPERM_TRACE=$tmp/lib.hpt ./examples/expr_jit --pages 'x*x+1' 3 4 > /dev/null
"$tool" dump "$tmp/lib.hpt" > "$tmp/lib.txt"
sed 's/^/# /' "$tmp/lib.txt" | head -8
check "HUGEPERM_TRACE: expr_jit's hp_alloc, hp_write and hp_free (2 of each)" \
	'[ $(grep -c " map .* r-x$" "$tmp/lib.txt") = 2 ] && [ $(grep -c " write " "$tmp/lib.txt") = 2 ] && [ $(grep -c " unmap " "$tmp/lib.txt") = 2 ] && grep -q "source=library comm=expr_jit" "$tmp/lib.txt"'
HUGEPERM_TRACE=$tmp/no/such/dir/t.hpt ./examples/expr_jit 'x' 1 > "$tmp/out" 2> "$tmp/err"; rc=$?
check "HUGEPERM_TRACE into a missing directory: said once, the program runs" \
	'[ $rc = 0 ] && [ $(grep -c "HUGEPERM_TRACE=.*: cannot create the file (ENOENT); not tracing" "$tmp/err") = 1 ] && grep -q "^x=1: 1 " "$tmp/out"'

# record: a real JIT, with the preload (not in a sanitizer build)
case "${HP_LDFLAGS:-}" in *sanitize*) preload=false ;; *) preload=true ;; esac
if $preload && command -v luajit > /dev/null 2>&1; then
	lua=$(cd "$srcdir" && pwd)/tests/e2e/engines/jit.lua
	luajit "$lua" 100 > "$tmp/plain.out"
	"$tool" record -o "$tmp/lj.hpt" -- luajit "$lua" 100 > "$tmp/rec.out" 2> "$tmp/rec.err"
	sed 's/^/# /' "$tmp/rec.err"
	check "record luajit: the same output" 'cmp -s "$tmp/plain.out" "$tmp/rec.out"'
	"$tool" dump "$tmp/lj.hpt" > "$tmp/lj.txt"
	check "record luajit: hinted RW areas, made RX, from the trace's own process" \
		'grep -q " map .* rw- hint=0x[0-9a-f]*$" "$tmp/lj.txt" && [ $(grep -c " protect .* r-x$" "$tmp/lj.txt") -gt 10 ] && grep -q "comm=luajit" "$tmp/lj.txt"'
	# The hint's address, as LuaJIT asked (its mcode areas: 64 KiB-aligned).
	check "record luajit: a version 2 trace with the hints' addresses, 64 KiB-aligned ones among them" \
		'head -1 "$tmp/lj.txt" | grep -q "trace v2 " && grep -Eq " hint=0x[0-9a-f]*0000$" "$tmp/lj.txt"'
	# Hints of our own through LuaJIT's FFI: the one the kernel took, and
	# one inside that mapping, which it did not (its page below mapped:
	# "grows"): each kept as asked.  Then
	# 64 KiB at the end of a MAP_SHARED mapping, which the trace does not
	# show: "grows", the kernel's in the replay, as the preload's probe says.
	"$tool" record -o "$tmp/hint.hpt" -- luajit -e 'local ffi = require("ffi")
ffi.cdef[[void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off);]]
ffi.C.mmap(ffi.cast("void *", 0x7e5a5a5b0000ULL), 196608, 3, 0x22, -1, 0)
ffi.C.mmap(ffi.cast("void *", 0x7e5a5a5c3000ULL), 8192, 3, 0x22, -1, 0)
ffi.C.mmap(ffi.cast("void *", 0x7e5a5a800000ULL), 65536, 3, 0x21, -1, 0)
ffi.C.mmap(ffi.cast("void *", 0x7e5a5a810000ULL), 65536, 3, 0x22, -1, 0)' 2> /dev/null
	"$tool" dump "$tmp/hint.hpt" > "$tmp/hint.txt"
	check "record: the hint's address as the program asked, taken or not" \
		'grep -q " map 0x[0-9a-f]* 48 rw- hint=0x7e5a5a5b0000$" "$tmp/hint.txt" && grep -q " map 0x[0-9a-f]* 2 rw- hint=0x7e5a5a5c3000|grows$" "$tmp/hint.txt"'
	"$tool" replay "$tmp/hint.hpt" --policy hugeperm-block --format json > "$tmp/hint.json"
	check "record: a hint above a mapping the trace does not show: grows, given to the kernel" \
		'grep -q " 16 rw- hint=0x7e5a5a810000|grows$" "$tmp/hint.txt" && json "$tmp/hint.json" "r=p[\"hugeperm-block\"]; sys.exit(0 if (r[\"areas_served\"], r[\"heap_chunks_passed\"]) == (1, 1) else 1)"'
else
	skip 5 "no luajit, or a sanitizer build (the preload cannot load there)"
fi

# the docs' tables
sh "$srcdir/sim/traces/table.sh" "$tool" > "$tmp/table.md"
sed -n '/<!-- sim-table begin -->/,/<!-- sim-table end -->/p' "$srcdir/docs/sim.md" |
	sed '1d;$d' > "$tmp/doc.md"
check "docs/sim.md holds what make sim-table prints" 'cmp -s "$tmp/table.md" "$tmp/doc.md"'
if ! cmp -s "$tmp/table.md" "$tmp/doc.md"; then diff "$tmp/doc.md" "$tmp/table.md" | sed 's/^/# /' | head -20; fi

# validation: simulated against real, on the kernel
thp=$(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2> /dev/null)
if { [ "$thp" = madvise ] || [ "$thp" = always ]; } && ! "$tool" info | grep -q "MADV_COLLAPSE unavailable"; then
	# The kernel's counters are system-wide: khugepaged collapsing any
	# process's memory meanwhile counts too (CI once read 3 collapses for
	# our 2).  It sleeps while the replays run, as in tests/kernel/stress.c;
	# its old period is put back at exit.  But while it knows no process
	# with memory it may collapse, it waits for the first, not for its
	# interval, and scans a replay's memory as soon as it comes: a process
	# that it knows (a read fault in an advised block, the huge zero page,
	# tests/lib/kernel.c) stays alive meanwhile.  The write wakes it for
	# one last scan: let that pass first.
	sleep_ms=/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs
	old_sleep=$(cat "$sleep_ms" 2> /dev/null)
	# The helper leaves when this script does, however it ends (dash runs
	# no EXIT trap when a signal kills it): it watches its parent.
	python3 -c '
import ctypes, mmap, os, sys, time
parent = os.getppid()
m = mmap.mmap(-1, 4 << 20)
off = -ctypes.addressof(ctypes.c_char.from_buffer(m)) % (2 << 20)
m.madvise(mmap.MADV_HUGEPAGE, off, 2 << 20)
m[off]
open(sys.argv[1], "w").close()
while os.getppid() == parent:
    time.sleep(0.2)' "$tmp/known" > /dev/null 2>&1 &
	known=$!
	trap 'kill $known 2> /dev/null; rm -rf "$tmp"' EXIT
	i=0
	while [ ! -e "$tmp/known" ] && kill -0 $known 2> /dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -e "$tmp/known" ] || echo "# no process known to khugepaged (python3 failed): it may scan a replay at once"
	if [ -n "$old_sleep" ] && echo 3600000 > "$sleep_ms" 2> /dev/null; then
		trap 'echo "$old_sleep" > "$sleep_ms"; kill $known 2> /dev/null; rm -rf "$tmp"' EXIT
		trap 'exit 1' INT TERM HUP
		sleep 1
	fi
	for tr in "$srcdir/sim/traces/luajit.hpt" "$tmp/s.hpt" "$srcdir/sim/traces/node.hpt"; do
		within() { [ $(( ($1 - $2) * ($1 - $2) * 400 )) -le $(( $2 * $2 )) ]; }
		# Measured again once when the kernel counted other than the
		# library: two fresh-clone CI runs, late in distcheck, read one
		# collapse more than ours (khugepaged scanning the replay at once,
		# above: see kernel_collapse_allocs_fit).  A real disagreement
		# shows twice.
		for try in 1 2; do
			"$tool" replay "$tr" --policy hugeperm-sync --real > "$tmp/real" 2>&1
			sed 's/^/# /' "$tmp/real"
			set -- $(awk '$1 == "hugeperm-sync" || $1 == "real" { print $2, $3 }' "$tmp/real") \
				$(sed -n 's/.*library counted \([0-9]*\) splits, \([0-9]*\) collapses.*/\1 \2/p' "$tmp/real")
			ss=${1:-x} sc=${2:-x} rs=${3:-y} rc=${4:-y} ls=${5:-z} lc=${6:-z}
			[ "$rs" = "$ls" ] && [ "$rc" = "$lc" ] && break
			[ "$try" = 2 ] && break
			echo "# the kernel counted $rs/$rc, the library $ls/$lc: measured again"
		done
		name=$(basename "$tr")
		check "validation $name: simulated splits $ss, kernel's $rs (within 5%)" 'within "$ss" "$rs"'
		# thp_collapse_alloc counts huge pages allocated by anyone,
		# khugepaged too: up to two a collapse (kernel_collapse_allocs_fit).
		check "validation $name: simulated collapses $sc, the library's $lc (equal), the kernel's allocations $rc (at most two a collapse); the library counted $ls splits" \
			'[ "$lc" = "$sc" ] && [ "$ls" = "$ss" ] && [ "$rc" -ge 0 ] && [ "$rc" -le $((2 * lc)) ]'
	done
else
	skip 6 "THP is '$thp' or MADV_COLLAPSE does not work here: no real replay"
fi
