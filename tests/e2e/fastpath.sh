#!/bin/sh
# fastpath.sh - a cache hit makes no system call: strace counts the calls
# between two marker getppid() calls around 100,000 alloc+free pairs of
# 1-16 pages in three classes (cache.t --loop, caches warmed first).
# cache.t itself shows that the same loop takes no lock.
set -u
echo "1..2"
if ! command -v strace >/dev/null 2>&1; then
	echo "not ok 1 - strace is not installed (the quick start installs it)"
	echo "not ok 2 - no count"
	exit 0
fi
# LeakSanitizer cannot run under ptrace; the other tests check leaks.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS
log=$(mktemp)
trap 'rm -f "$log" "$log.c"' EXIT
n=100000
if strace -o "$log" ./tests/kernel/cache.t --loop $n; then
	echo "ok 1 - $n alloc+free pairs ran under strace"
else
	echo "not ok 1 - cache.t --loop failed under strace"
fi
# System calls from the first marker to the second, markers excluded.
inside=$(awk '/^getppid\(/ { m++; next } m == 1 { c++ } END { print c + 0 }' "$log")
markers=$(grep -c '^getppid(' "$log")
sed -n '/^getppid(/,/^getppid(/p' "$log" | head -5 | sed 's/^/# /'
strace -c -o "$log.c" ./tests/kernel/cache.t --loop $n && sed 's/^/# strace -c: /' "$log.c" | head -12
if [ "$markers" -eq 2 ] && [ "$inside" -eq 0 ]; then
	echo "ok 2 - no system call in $n cache hits"
else
	echo "not ok 2 - $inside system calls between the markers (markers seen: $markers)"
fi
