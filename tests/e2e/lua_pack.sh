#!/bin/sh
# lua_pack.sh - LuaJIT with many traces (bench/engines/lua_bigcode.lua:
# 1,500 loops, about 5 MiB of machine code in some 75 mcode areas of 64 KiB)
# plain and under the preload, held once all are compiled while the kernel's
# view is read: the preload packs the areas into shared 2 MiB blocks
# (preload/pack.c), so its memory stays near the plain run's (VmHWM, VmRSS
# from /proc/PID/status), the code is huge-mapped (AnonHugePages of the
# executable anonymous VMAs in /proc/PID/smaps), the blocks are few, and
# the flips split nothing (thp_split_pmd).  HUGEPERM_PRELOAD_PACK=0 gives
# the old block per area.
set -u
srcdir=${srcdir:-..}
tool=$(pwd)/tools/hugeperm
lib=$(pwd)/.libs/libhugeperm-preload.so
export HUGEPERM_PRELOAD_LIB=$lib
. "$srcdir/tests/lib/tap.sh"
echo "1..9"
case "${HP_LDFLAGS:-}" in *sanitize*)
	skip 9 "the preload is tested in the plain build"
	exit 0 ;;
esac
command -v luajit > /dev/null 2>&1 || { skip 9 "luajit is not installed"; exit 0; }
lua=$(cd "$srcdir" && pwd)/bench/engines/lua_bigcode.lua
split() { awk '$1 == "thp_split_pmd" { print $2 }' /proc/vmstat; }

# Run luajit on lua_bigcode.lua ("$@" in front: the tool), held once compiled;
# $1.out: its output, $1.kernel: "hwm_kb rss_kb code_kb huge_kb blocks" of
# the kernel's view then.
held() {
	name=$1
	shift
	mkfifo "$tmp/$name.in"
	"$@" luajit -Omaxtrace=65000 -Omaxmcode=262144 "$lua" 1500 40 3000 4 wait \
		< "$tmp/$name.in" > "$tmp/$name.out" 2>&1 &
	job=$!
	exec 3> "$tmp/$name.in"
	i=0
	while ! grep -q 'pid [0-9]*$' "$tmp/$name.out" && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	pid=$(sed -n 's/^traces .* pid \([0-9]*\)$/\1/p' "$tmp/$name.out")
	python3 - "${pid:-0}" > "$tmp/$name.kernel" <<'PY'
import sys
pid = sys.argv[1]
st = dict(l.split(":", 1) for l in open("/proc/%s/status" % pid))
kb = lambda v: int(v.split()[0])
code = huge = 0
blocks = set()
exe = False
for line in open("/proc/%s/smaps" % pid):
    f = line.split()
    if "-" in f[0] and len(f) >= 5 and ":" not in f[0]:
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        # the JIT's code: executable anonymous memory (no file behind it)
        exe = "x" in f[1] and len(f) == 5
        if exe:
            blocks.update(range(lo >> 21, (hi - 1 >> 21) + 1))
    elif exe and f[0] == "Rss:":
        code += int(f[1])
    elif exe and f[0] == "AnonHugePages:":
        huge += int(f[1])
print(kb(st["VmHWM"]), kb(st["VmRSS"]), code, huge, len(blocks))
PY
	echo >&3
	exec 3>&-
	wait $job
}

held plain
s0=$(split)
held pack "$tool" run --json -o "$tmp/pack.json"
s1=$(split)
HUGEPERM_PRELOAD_PACK=0 held apart "$tool" run --json -o "$tmp/apart.json"

set -- $(cat "$tmp/plain.kernel")
p_hwm=${1:-0} p_rss=${2:-0} p_code=${3:-0}
set -- $(cat "$tmp/pack.kernel")
k_hwm=${1:-0} k_rss=${2:-0} k_code=${3:-0} k_huge=${4:-0} k_blocks=${5:-0}
set -- $(cat "$tmp/apart.kernel")
a_hwm=${1:-0} a_code=${3:-0} a_blocks=${5:-0}
served=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["preload"]["areas"])' \
	"$tmp/pack.json" 2> /dev/null || echo 0)
# The mcode areas live then, 64 KiB each, from the plain run's code.  (The
# preload may serve more areas: LuaJIT's heap chunks, when their hints
# happen to be 64 KiB-aligned, are taken for areas too.)
areas=$((p_code / 64))
echo "# plain: VmHWM $p_hwm kB, VmRSS $p_rss kB, JIT code $p_code kB"
echo "# packed: VmHWM $k_hwm kB, VmRSS $k_rss kB, JIT code $k_code kB ($k_huge kB huge) in $k_blocks blocks ($served areas served)"
echo "# a block per area (HUGEPERM_PRELOAD_PACK=0): VmHWM $a_hwm kB, JIT code $a_code kB in $a_blocks blocks"

check "the same result plain, packed and a block per area ($(tail -1 "$tmp/plain.out"))" \
	'grep -q "^result" "$tmp/plain.out" &&
	 [ "$(tail -1 "$tmp/plain.out")" = "$(tail -1 "$tmp/pack.out")" ] &&
	 [ "$(tail -1 "$tmp/plain.out")" = "$(tail -1 "$tmp/apart.out")" ]'
check "the JIT mapped many areas ($areas) and a few MiB of code ($p_code kB plain)" \
	'[ "$areas" -ge 40 ] && [ "$served" -ge "$areas" ]'
# The areas share blocks: at most one block per 32 areas of 64 KiB, plus
# the open one.
check "packed: $areas mcode areas in $k_blocks blocks (at most $((areas / 32 + 2)))" \
	'[ "$k_blocks" -ge 1 ] && [ "$k_blocks" -le $((areas / 32 + 2)) ]'
check "packed: $k_huge of $k_code kB of JIT code huge-mapped (at least 95%)" \
	'[ "$k_code" -gt 0 ] && [ $((k_huge * 100)) -ge $((k_code * 95)) ]'
# Memory: the blocks' unused part (at most one open block, 2 MiB) and the
# arena's metadata (block tables, the region table: under 2 MiB) above the
# plain run; 6 MiB allowed for both, at peak and now.
check "packed: peak RSS $k_hwm kB, within 6 MiB of plain ($p_hwm kB)" \
	'[ "$k_hwm" -gt 0 ] && [ "$k_hwm" -le $((p_hwm + 6144)) ]'
check "packed: RSS $k_rss kB, within 6 MiB of plain ($p_rss kB)" \
	'[ "$k_rss" -gt 0 ] && [ "$k_rss" -le $((p_rss + 6144)) ]'
check "packed: thp_split_pmd +$((s1 - s0)) over the run (at most 1: system-wide)" \
	'[ $((s1 - s0)) -le 1 ]'
check "HUGEPERM_PRELOAD_PACK=0: a block per area ($a_blocks blocks)" \
	'[ "$a_blocks" -ge "$areas" ]'
check "... which is what packing saves: $((a_hwm - k_hwm)) kB of peak RSS" \
	'[ "$a_hwm" -ge $((k_hwm + areas * 1024)) ]'
