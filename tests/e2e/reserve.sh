#!/bin/sh
# reserve.sh - reservations held for the kernel until they hold code
# (preload/reserve.c): tests/e2e/reserve_ops under the preload, its report's
# counters, then Erlang/OTP: its 1 GiB literal area (PROT_NONE|
# MAP_NORESERVE, data) stays the kernel's while it runs (/proc/self/smaps,
# `hugeperm stats`, the report) and the output is the same; java's adopted
# code cache's untouched blocks are lazy address space in the stats.  An
# engine that is not installed is skipped, with the reason.
set -u
srcdir=${srcdir:-..}
tool=$(pwd)/tools/hugeperm
lib=$(pwd)/.libs/libhugeperm-preload.so
export HUGEPERM_PRELOAD_LIB=$lib
. "$srcdir/tests/lib/tap.sh"
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

case "${HP_LDFLAGS:-}" in *sanitize*)
	echo "1..0 # SKIP the preload is tested in the plain build"
	exit 0 ;;
esac

"$tool" run --json -o "$tmp/ops.json" -- ./tests/e2e/reserve_ops > "$tmp/tap" 2>&1
rc=$?
plan=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$tmp/tap")
echo "1..$((plan + 9))"
grep -v '^1\.\.' "$tmp/tap"
n=$plan
[ $rc -eq 0 ] || echo "# reserve_ops exited with $rc"
held=$(json "$tmp/ops.json" 'd[0]["preload"]["resv_held"]')
adopted=$(json "$tmp/ops.json" 'd[0]["preload"]["resv_adopted"]')
kept=$(json "$tmp/ops.json" 'd[0]["preload"]["resv_kept"]')
echo "# reserve_ops: $held reservations held, $adopted adopted, $kept kept the kernel's"
check "the report counts them: held $held >= adopted $adopted + kept $kept, both > 0" \
	'[ "$adopted" -gt 0 ] && [ "$kept" -gt 0 ] && [ "$held" -ge $((adopted + kept)) ]'

# A V8 code range's life under strace: its adoption and its unmap drop the
# memory of its untouched blocks, which hold none: the library asks the
# kernel once (PAGEMAP_SCAN) instead of a MADV_DONTNEED of each of its 256
# blocks, and the adoption looks for the range's pages with PAGEMAP_SCAN,
# not 256 reads of pagemap (main at 70b68ea: 768 and 256).
set -- $(uname -r | sed 's/^\([0-9]*\)\.\([0-9]*\).*/\1 \2/')
if [ "$1" -lt 6 ] || { [ "$1" -eq 6 ] && [ "$2" -lt 7 ]; }; then
	skip 2 "PAGEMAP_SCAN is Linux 6.7+ ($(uname -r)): every block is dropped, as before"
elif command -v strace >/dev/null 2>&1; then
	strace -f -E LD_PRELOAD="$lib" -e trace=madvise,pread64 \
		-o "$tmp/v8.strace" ./tests/e2e/reserve_ops v8 > "$tmp/v8.out" 2>&1
	rc=$?
	drops=$(grep -c 'MADV_DONTNEED' "$tmp/v8.strace")
	reads=$(grep -c '^[0-9]* *pread64(' "$tmp/v8.strace")
	echo "# a V8 code range adopted and unmapped (exit $rc, $(cat "$tmp/v8.out")): $drops MADV_DONTNEED, $reads pread64"
	check "its untouched blocks' memory is not dropped block by block: $drops MADV_DONTNEED (at most 4)" \
		'[ $rc -eq 0 ] && grep -q "^adopted 1" "$tmp/v8.out" && [ "$drops" -le 4 ]'
	check "its pages are looked for without reading pagemap whole: $reads pread64 (at most 2)" \
		'[ $rc -eq 0 ] && [ "$reads" -le 2 ]'
else
	skip 2 "strace is not installed"
fi

# --- Erlang/OTP: the literal area is data -----------------------------------
if command -v erl >/dev/null 2>&1 && command -v erlc >/dev/null 2>&1; then
	# Once the VM is up, before its JIT work: its own smaps (the literal
	# area: the 1 GiB PROT_NONE|MAP_NORESERVE reservation, "nr" in VmFlags)
	# and `hugeperm stats` of it (what is hugeperm's).  Its JIT code, huge
	# through the shared-memory path, is shared_code.sh's check.
	erlc -o "$tmp" "$srcdir/tests/e2e/engines/jit.erl"
	ev="{ok, B} = file:read_file(\"/proc/self/smaps\"),
	    ok = file:write_file(\"$tmp/erl.smaps\", B),
	    ok = file:write_file(\"$tmp/erl.stats\", os:cmd(\"$tool stats --json \" ++ os:getpid())),
	    jit:main([\"20\"])"
	erl -noshell -pa "$tmp" -eval "$ev" > "$tmp/erl.plain" 2>&1
	"$tool" run --json -o "$tmp/erl.json" -- erl -noshell -pa "$tmp" -eval "$ev" > "$tmp/erl.hp" 2>&1
	check "erl: the same output under the preload ($(cat "$tmp/erl.plain"))" \
		'grep -q "^modules 20" "$tmp/erl.plain" && cmp -s "$tmp/erl.plain" "$tmp/erl.hp"'
	beam='[p for p in d if p["comm"] == "beam.smp"][0]'
	resv=$(json "$tmp/erl.json" "$beam[\"preload\"][\"reservations\"]")
	held=$(json "$tmp/erl.json" "$beam[\"preload\"][\"resv_held\"]")
	adopted=$(json "$tmp/erl.json" "$beam[\"preload\"][\"resv_adopted\"]")
	none=$(json "$tmp/erl.json" "$beam[\"hugeperm\"].get(\"classes\", {}).get(\"none\", {}).get(\"used_bytes\", 0)")
	used=$(json "$tmp/erl.json" "$beam[\"hugeperm\"][\"used_bytes\"]")
	echo "# erl: $held reservation held, $adopted adopted, $resv served; hugeperm used $used bytes, class none $none"
	check "erl: its literal area held for the kernel, never adopted, nothing served as a code range" \
		'[ "$held" = 1 ] && [ "$adopted" = 0 ] && [ "$resv" = 0 ]'
	check "erl: hugeperm's stats call none of it used ($used bytes used, class none $none)" \
		'[ "$none" = 0 ] && [ "$used" -lt $((64 << 20)) ]'
	area=$(python3 - "$tmp/erl.smaps" "$tmp/erl.stats" <<'PY'
import json, sys
stats = json.load(open(sys.argv[2]))
ours = [(v["start"], v["end"]) for v in stats.get("vmas", [])]
found = []
cur = None
for line in open(sys.argv[1]):
    f = line.split()
    if "-" in f[0] and not f[0].endswith(":"):
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        cur = (lo, hi, f[1], len(f) == 5)
    elif f[0] == "VmFlags:" and cur and "nr" in f[1:]:
        lo, hi, perms, anon = cur
        if hi - lo >= 512 << 20 and perms == "---p" and anon:
            inside = any(s < hi and e > lo for s, e in ours)
            found.append("%x-%x %s" % (lo, hi, "ours" if inside else "kernel"))
print(found[0] if len(found) == 1 else "none" if not found else ";".join(found))
PY
)
	echo "# erl: literal area VMA $area"
	check "erl: its literal area is one kernel VMA, not hugeperm's ($area)" \
		'case "$area" in *" kernel") true ;; *) false ;; esac'
else
	skip 4 "erl/erlc are not installed (apt-get install erlang-base)"
fi

# The stats' lazy address space: a process with a served code range whose
# blocks are still untouched reports them as lazy, not used.
if command -v java >/dev/null 2>&1; then
	jsrc=$srcdir/tests/e2e/engines/Jit.java
	"$tool" run --json -o "$tmp/java.json" -- java "$jsrc" > /dev/null 2>&1
	jv='[p for p in d if p["preload"]["reservations"]][0]["hugeperm"]'
	lazy=$(json "$tmp/java.json" "$jv[\"lazy_bytes\"]")
	none=$(json "$tmp/java.json" "$jv[\"classes\"].get(\"none\", {}).get(\"used_bytes\", 0)")
	code=$(json "$tmp/java.json" "$jv[\"classes\"][\"rwx\"][\"used_bytes\"]")
	echo "# java: code cache adopted; lazy_bytes $lazy, class none used $none, rwx used $code"
	check "java: its code cache's untouched blocks are lazy address space, not used ($lazy lazy bytes)" \
		'[ "$lazy" -ge $((128 << 20)) ] && [ "$none" -lt $((16 << 20)) ] && [ "$code" -gt 0 ]'
	check "java: its code cache was adopted on evidence (resv_adopted)" \
		'[ "$(json "$tmp/java.json" "sum(p[\"preload\"][\"resv_adopted\"] for p in d)")" -ge 1 ]'
else
	skip 2 "java is not installed"
fi
