#!/bin/sh
# preload_start.sh - what loading the preload costs a process that is
# served nothing: strace of /bin/true with and without it.  The preload
# brings liburcu-bp and nothing else (libnuma's constructor read /proc and
# /sys and set the mempolicy in every process), opens no other file, makes
# no mempolicy call, and adds a bounded number of system calls (loading two
# libraries, liburcu-bp's membarrier registration, our constructor).
set -u
lib=$(pwd)/.libs/libhugeperm-preload.so
case "${HP_LDFLAGS:-}" in *sanitize*)
	echo "1..0 # SKIP the preload is tested in the plain build (a sanitizer runtime must load first)"
	exit 0 ;;
esac
echo "1..4"
if ! command -v strace >/dev/null 2>&1 || [ ! -r "$lib" ]; then
	for i in 1 2 3 4; do echo "not ok $i - strace or $lib missing"; done
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
strace -o "$tmp/plain" /bin/true
LD_PRELOAD=$lib strace -E LD_PRELOAD="$lib" -o "$tmp/pre" /bin/true
if grep -q 'exited with 0' "$tmp/pre" && grep -q "libhugeperm-preload.so" "$tmp/pre"; then
	echo "ok 1 - /bin/true ran under strace with the preload loaded"
else
	echo "not ok 1 - /bin/true with the preload under strace"
fi
# Files opened beyond the plain run's: the preload and liburcu-bp only.
opened() { sed -n 's/^open[a-z]*([^"]*"\([^"]*\)".*/\1/p' "$1" | sort -u; }
extra=$(opened "$tmp/pre" | grep -vxF -f "$(opened "$tmp/plain" >"$tmp/po"; echo "$tmp/po")" |
	grep -v -e 'libhugeperm-preload\.so$' -e '/liburcu-bp\.so[.0-9]*$' | tr '\n' ' ')
if [ -z "$extra" ]; then
	echo "ok 2 - it opens no file but itself and liburcu-bp (no libnuma, no /proc, no /sys)"
else
	echo "not ok 2 - it opens more files: $extra"
fi
mp=$(grep -c -e '^set_mempolicy(' -e '^get_mempolicy(' "$tmp/pre")
if [ "$mp" -eq 0 ]; then
	echo "ok 3 - no mempolicy call (libnuma's constructor made three)"
else
	echo "not ok 3 - $mp mempolicy calls"
fi
p=$(grep -c . "$tmp/plain")
n=$(grep -c . "$tmp/pre")
echo "# system calls: $p plain, $n with the preload"
# 23 more on this machine: two libraries loaded (open, stat, five mmaps,
# mprotect, close each), membarrier twice, getpid twice; libnuma added 40.
if [ $((n - p)) -le 30 ]; then
	echo "ok 4 - the preload adds $((n - p)) system calls to a process it serves nothing (at most 30)"
else
	echo "not ok 4 - the preload adds $((n - p)) system calls to a process it serves nothing (more than 30)"
	sed 's/^/# /' "$tmp/pre"
fi
