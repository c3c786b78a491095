#!/bin/sh
# preload_start.sh - what loading the preload costs a process that is
# served nothing: strace of /bin/true with and without it.  The preload
# brings liburcu-bp and nothing else (libnuma's constructor read /proc and
# /sys and set the mempolicy in every process), opens no other file, makes
# no mempolicy call, and adds a bounded number of system calls (loading two
# libraries, liburcu-bp's membarrier registration, our constructor).  A
# process it serves probes the machine once and reads the hugetlb pools once.
set -u
case "${HP_LDFLAGS:-}" in *sanitize*)
	echo "1..0 # SKIP the preload is tested in the plain build (a sanitizer runtime must load first)"
	exit 0 ;;
esac
srcdir=${srcdir:-..}
. "$srcdir/tests/lib/tap.sh"
lib=$(pwd)/.libs/libhugeperm-preload.so
echo "1..9"
if ! command -v strace >/dev/null 2>&1 || [ ! -r "$lib" ]; then
	for i in 1 2 3 4 5 6 7 8 9; do fail "strace or $lib missing"; done
	exit 0
fi
strace -o "$tmp/plain" /bin/true
LD_PRELOAD=$lib strace -E LD_PRELOAD="$lib" -o "$tmp/pre" /bin/true
check "/bin/true ran under strace with the preload loaded" \
	'grep -q "exited with 0" "$tmp/pre" && grep -q libhugeperm-preload.so "$tmp/pre"'
# Files opened beyond the plain run's: the preload and liburcu-bp only.
opened() { sed -n 's/^open[a-z]*([^"]*"\([^"]*\)".*/\1/p' "$1" | sort -u; }
opened "$tmp/plain" > "$tmp/plain.files"
extra=$(opened "$tmp/pre" | grep -vxF -f "$tmp/plain.files" |
	grep -v -e 'libhugeperm-preload\.so$' -e '/liburcu-bp\.so[.0-9]*$' | tr '\n' ' ')
check "it opens no file but itself and liburcu-bp (no libnuma, no /proc, no /sys)${extra:+: $extra}" \
	'[ -z "$extra" ]'
mp=$(grep -c -e '^set_mempolicy(' -e '^get_mempolicy(' "$tmp/pre")
check "no mempolicy call (libnuma's constructor made three): $mp" '[ "$mp" -eq 0 ]'
p=$(grep -c . "$tmp/plain")
k=$(grep -c . "$tmp/pre")
echo "# system calls: $p plain, $k with the preload"
# 23 more on this machine: two libraries loaded (open, stat, five mmaps,
# mprotect, close each), membarrier twice, getpid twice; libnuma added 40.
check "the preload adds $((k - p)) system calls to a process it serves nothing (at most 30)" \
	'[ $((k - p)) -le 30 ]'

# A process it serves (preload_ops _exit: 64 KiB of RWX code, run, _exit):
# the machine is probed once, and the hugetlb pools read once, by the probe,
# for the arena its first served mapping makes and the library's default
# arena alike (each reading is 17 system calls: a global and a per-node
# file of each size; the arenas of main at 8289637 read them three times).
LD_PRELOAD=$lib strace -f -E LD_PRELOAD="$lib" -o "$tmp/served" ./tests/e2e/preload_ops _exit
rc=$?
check "a served process ran under strace (exit $rc)" \
	'[ $rc -eq 0 ] && grep -q "transparent_hugepage/enabled" "$tmp/served"'
pools=$(grep -c 'hugepages-2048kB/free_hugepages"' "$tmp/served")
nodes=$(ls -d /sys/devices/system/node/node[0-9]*/hugepages/hugepages-2048kB 2>/dev/null | wc -l)
check "it reads the 2 MiB pool's free_hugepages once, and once a node: $pools times ($nodes nodes)" \
	'[ "$pools" -ge 1 ] && [ "$pools" -le $((1 + nodes)) ]'
thp=$(grep -c 'transparent_hugepage/enabled"' "$tmp/served")
check "and the THP mode once: $thp" '[ "$thp" -eq 1 ]'

# A served process that unmaps its code before it leaves (LuaJIT's
# lua_close): the freed block is its class's reserve, never purged, so no
# purge thread is started for it (main at 8289637 started one: an 8 MiB
# stack mapped and a clone3 in every such process).
out=$(LD_PRELOAD=$lib strace -f -E LD_PRELOAD="$lib" -o "$tmp/unmap" ./tests/e2e/preload_ops unmap)
rc=$?
check "a served JIT area, run and unmapped (exit $rc, $out)" \
	'[ $rc -eq 0 ] && [ "$out" = "served 1" ]'
threads=$(grep -c -e '^[0-9]* *clone3*(' "$tmp/unmap")
check "it starts no thread: $threads clone calls" '[ "$threads" -eq 0 ]'
