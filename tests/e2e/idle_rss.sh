#!/bin/sh
# idle_rss.sh - issue 16's program (tests/e2e/idle_rss: 16 x 2 MiB RWX
# mapped, written and unmapped three times, then idle) plain and under the
# preload: after ~1.5 s idle with the default HUGEPERM_PURGE_MS the
# preloaded run's RssAnon + RssShmem is within 8 MiB of the plain run's,
# with no further call from the program; HUGEPERM_PURGE_MS=-1 keeps the
# blocks (so it is the purge that gives them back), 0 gives them back at
# once, and `hugeperm run --stats` counts what was purged.
set -u
lib=$(pwd)/.libs/libhugeperm-preload.so
prog=./tests/e2e/idle_rss
case "${HP_LDFLAGS:-}" in *sanitize*)
	echo "1..0 # SKIP the preload is tested in the plain build (a sanitizer runtime must load first)"
	exit 0 ;;
esac
[ -r "$lib" ] || { echo "1..1"; echo "not ok 1 - $lib was not built"; exit 0; }
echo "1..5"
n=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
field() { echo "$1" | sed -n "s/.* $2 \([0-9-]*\).*/\1/p"; }

plain=$($prog 100)
pre=$(env -u HUGEPERM_PURGE_MS LD_PRELOAD=$lib $prog 1500)
echo "# plain: $plain"
echo "# preload, default delay: $pre"
p_after=$(field "$plain" after)
before=$(field "$pre" before)
after=$(field "$pre" after)
check "the preload held the blocks when the program unmapped them ($before kB)" \
	'[ "$before" -ge $((30 * 1024)) ]'
check "after idling 1.5 s: $after kB, within 8 MiB of plain ($p_after kB)" \
	'[ "$after" -le $((p_after + 8 * 1024)) ]'

never=$(HUGEPERM_PURGE_MS=-1 LD_PRELOAD=$lib $prog 300)
echo "# preload, HUGEPERM_PURGE_MS=-1: $never"
check "HUGEPERM_PURGE_MS=-1: the blocks stay ($(field "$never" after) kB)" \
	'[ "$(field "$never" after)" -ge $((30 * 1024)) ]'

now=$(HUGEPERM_PURGE_MS=0 LD_PRELOAD=$lib $prog 0)
echo "# preload, HUGEPERM_PURGE_MS=0: $now"
check "HUGEPERM_PURGE_MS=0: given back by the unmaps themselves ($(field "$now" before) kB)" \
	'[ "$(field "$now" before)" -le $((p_after + 8 * 1024)) ]'

err=$(HUGEPERM_PURGE_MS=100 HUGEPERM_PRELOAD_LIB=$lib ./tools/hugeperm run --stats -- $prog 400 2>&1 >/dev/null)
check "hugeperm run --stats reports purged_blocks 15 and their bytes" \
	'echo "$err" | grep -q "purged_blocks  *15\$" && echo "$err" | grep -q "purged_bytes  *31457280\$"'
