#!/bin/sh
# preload.sh - tests/e2e/preload_ops under libhugeperm-preload.so (the kernel's
# view of what the preload serves), then what exec children inherit.
set -u
lib=$(pwd)/.libs/libhugeperm-preload.so
case "${HP_LDFLAGS:-}" in *sanitize*)
	echo "1..0 # SKIP the preload is tested in the plain build (a sanitizer runtime must load first)"
	exit 0 ;;
esac
[ -r "$lib" ] || { echo "1..1"; echo "not ok 1 - $lib was not built"; exit 0; }
tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
LD_PRELOAD=$lib ./tests/e2e/preload_ops > "$tap" 2>&1
rc=$?
# Renumber preload_ops' plan into ours: its tests, then three of our own.
plan=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$tap")
echo "1..$((plan + 4))"
grep -v '^1\.\.' "$tap"
n=$plan
[ $rc -eq 0 ] || echo "# preload_ops exited with $rc"
n=$((n + 1))
out=$(LD_PRELOAD=$lib sh -c 'echo "$LD_PRELOAD"')
case "$out" in *libhugeperm-preload.so*) echo "ok $n - exec children inherit the preload" ;;
*) echo "not ok $n - exec children inherit the preload ($out)" ;; esac
n=$((n + 1))
out=$(HUGEPERM_PRELOAD_INHERIT=0 LD_PRELOAD=$lib sh -c 'echo "[$LD_PRELOAD]"')
case "$out" in *libhugeperm*) echo "not ok $n - HUGEPERM_PRELOAD_INHERIT=0 drops it ($out)" ;;
*) echo "ok $n - HUGEPERM_PRELOAD_INHERIT=0 drops it for exec children" ;; esac
n=$((n + 1))
out=$(LD_PRELOAD=$lib HUGEPERM_PRELOAD_FLIP=sideways ./tests/e2e/preload_ops 2>&1 >/dev/null | head -1)
case "$out" in *"HUGEPERM_PRELOAD_FLIP must be block, exact or rwx (EINVAL)"*)
	echo "ok $n - a bad HUGEPERM_PRELOAD_FLIP is named, with EINVAL" ;;
*) echo "not ok $n - a bad HUGEPERM_PRELOAD_FLIP is named ($out)" ;; esac
n=$((n + 1))
out=$(LD_PRELOAD=$lib HUGEPERM_PRELOAD_FLIP=exact ./tests/e2e/preload_ops guard 2>&1)
case "$out" in "guard 0 huge 0")
	echo "ok $n - HUGEPERM_PRELOAD_FLIP=exact keeps a reservation's guard pages PROT_NONE (and its block 4K)" ;;
*) echo "not ok $n - HUGEPERM_PRELOAD_FLIP=exact keeps guard pages ($out)" ;; esac
