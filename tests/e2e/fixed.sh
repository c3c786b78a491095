#!/bin/sh
# fixed.sh - tests/e2e/fixed_ops (what Ruby's YJIT and Mono ask the kernel
# for) plain and under the preload, in each flip mode: the same output (the
# code ran, MAP_FIXED_NOREPLACE kept its EEXIST, the address came back after
# munmap, MAP_32BIT stayed below 2 GiB); and under the preload the kernel
# shows the fixed ranges and the 32-bit chunks huge-mapped (smaps).  Fixed
# ranges are served only when HUGEPERM_PRELOAD_SERVE says "fixed" (opt-in:
# docs/preload.md); by default they are the kernel's.
set -u
lib=$(pwd)/.libs/libhugeperm-preload.so
ops=./tests/e2e/fixed_ops
case "${HP_LDFLAGS:-}" in *sanitize*)
	echo "1..0 # SKIP the preload is tested in the plain build (a sanitizer runtime must load first)"
	exit 0 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
echo "1..32"
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; sed 's/^/# /' "$tmp/err" "$tmp/hp.out" 2>/dev/null; fi; }
# fact NAME FIELD: a number from the facts line of NAME.
fact() { awk -v k="$1" -v f="$2" '$1 == "facts" && $2 == k { for (i = 3; i < NF; i++) if ($i == f) print $(i + 1) }' "$tmp/err"; }

"$ops" > "$tmp/plain.out" 2> /dev/null
rc=$?
check "plain: every case ran as the kernel says (rc $rc)" \
	'[ $rc -eq 0 ] && grep -q "yjit: the range again: File exists; a range overlapping its end: File exists" "$tmp/plain.out" && grep -q "map32: 16 chunks, all below 2 GiB: yes" "$tmp/plain.out" && grep -q "flips: 400 calls, pages lacking a protection asked for: 0" "$tmp/plain.out"'
# By default the fixed ranges go to the kernel; MAP_32BIT chunks are served.
HUGEPERM_PRELOAD_REPORT=1 LD_PRELOAD=$lib "$ops" > "$tmp/hp.out" 2> "$tmp/err"
rc=$?
fixed=$(sed -n 's/.* \([0-9]*\) at a fixed address.*/\1/p' "$tmp/err")
low=$(sed -n 's/.*; \([0-9]*\) below 2 GiB;.*/\1/p' "$tmp/err")
rss=$(fact yjit rss_kb) huge=$(fact yjit huge_kb)
check "default: the same output, no fixed range served ($fixed), the 32-bit chunks are ($low), yjit's range the kernel's ($huge of $rss KiB huge)" \
	'[ $rc -eq 0 ] && cmp -s "$tmp/plain.out" "$tmp/hp.out" && [ "$fixed" = 0 ] && [ "${low:-0}" -eq 16 ] && [ "${rss:-0}" -ge 262144 ] && [ "${huge:-1}" -lt "$rss" ]'
check "default: every case mapped at its first hint (blocked: $(fact blocked-tries n) tries)" \
	'[ "$(fact yjit-tries n)" = 1 ] && [ "$(fact blocked-tries n)" = 1 ]'
serve=exec,areas,reservations,fixed
for flip in block exact rwx; do
	# Blocks written page by page are collapsed once quiet: the facts wait.
	FIXED_OPS_SETTLE_MS=5000 HUGEPERM_PRELOAD_SERVE=$serve HUGEPERM_PRELOAD_FLIP=$flip HUGEPERM_PRELOAD_REPORT=1 LD_PRELOAD=$lib "$ops" > "$tmp/hp.out" 2> "$tmp/err"
	rc=$?
	check "$flip: the same output under the preload (rc $rc)" \
		'[ $rc -eq 0 ] && cmp -s "$tmp/plain.out" "$tmp/hp.out"'
	fixed=$(sed -n 's/.* \([0-9]*\) at a fixed address.*/\1/p' "$tmp/err")
	low=$(sed -n 's/.*; \([0-9]*\) below 2 GiB;.*/\1/p' "$tmp/err")
	check "$flip: the fixed ranges were served at their address ($fixed), the 32-bit chunks below 2 GiB ($low)" \
		'[ "${fixed:-0}" -eq 9 ] && [ "${low:-0}" -eq 16 ]'
	# blocked: its first block is shared, and more than half a block of
	# the range would be on the kernel's small pages: told EEXIST, once;
	# served 4 MiB up, where fixed_ops tries next as YJIT does.
	refused=$(sed -n 's/.* \([0-9]*\) told EEXIST once.*/\1/p' "$tmp/err")
	check "$flip: blocked: told EEXIST once ($refused), served 4 MiB up ($(fact blocked-tries n) tries); the others at their hint" \
		'[ "$refused" = 1 ] && [ "$(fact blocked-tries n)" = 2 ] && [ "$(fact yjit-tries n)" = 1 ] && [ "$(fact cross-tries n)" = 1 ] && [ "$(fact edge-tries n)" = 1 ]'
	for c in yjit cross blocked; do
		rss=$(fact $c rss_kb) huge=$(fact $c huge_kb)
		# exact: the first block holds NONE pages before the range and RX
		# ones in it, and stays 4K.
		check "$flip: $c: $huge of $rss KiB huge-mapped (>= 99%)" \
			'[ "${rss:-0}" -ge 262144 ] && [ $((${huge:-0} * 100)) -ge $((rss * 99)) ]'
	done
	# edge: the 6 MiB below the boundary are served too (a chunk of the
	# slot's 6 MiB free there), not left to the kernel's 4 KiB pages.
	rss=$(fact edge rss_kb) huge=$(fact edge huge_kb)
	check "$flip: edge: $huge of $rss KiB huge-mapped (>= 99%: the part below the slot too)" \
		'[ "${rss:-0}" -ge 262144 ] && [ $((${huge:-0} * 100)) -ge $((rss * 99)) ]'
	# flips: every page as asked, in the kernel (the fast path of
	# preload/code_range_flip.c skipped no change).  Block mode merges a
	# block of R or NONE pages and RX ones into RX, rwx makes RW and RX
	# RWX (the same output says no page lacks a bit asked for).
	case $flip in
	exact) check "exact: flips: $(fact flips differ) pages differ from what was asked, in /proc/self/maps" \
		'[ "$(fact flips differ)" = 0 ]' ;;
	block) check "block: flips: $(fact flips rw_rx_differ) pages asked RW or RX differ from it, in /proc/self/maps" \
		'[ "$(fact flips rw_rx_differ)" = 0 ]'
		# Every fixed range was unmapped, and its arena destroyed, before
		# the exit's report: what they did is in it all the same.
		coll=$(awk '$1 == "collapses" { print $2 }' "$tmp/err")
		cns=$(awk '$1 == "collapse_ns" { print $2 }' "$tmp/err")
		check "block: the report keeps what the ranges' arenas did: $coll collapses, $cns ns in them" \
			'[ "${coll:-0}" -ge 9 ] && [ "${cns:-0}" -gt 0 ] && grep -q "MADV_COLLAPSE [1-9][0-9.]* ms for blocks" "$tmp/err"' ;;
	esac
	rss=$(fact map32 rss_kb) huge=$(fact map32 huge_kb)
	check "$flip: map32: the chunks' block is huge-mapped ($huge of $rss KiB)" \
		'[ "${huge:-0}" -ge 2048 ] && [ "$huge" = "$rss" ]'
done
# A program that switched THP off for itself (Ruby): our blocks still huge
# (thp.c), and the switch reads back as it was set.
"$ops" thpoff > "$tmp/plain.out" 2> /dev/null
FIXED_OPS_SETTLE_MS=5000 HUGEPERM_PRELOAD_SERVE=$serve LD_PRELOAD=$lib "$ops" thpoff > "$tmp/hp.out" 2> "$tmp/err"
rc=$?
check "thpoff: the same output under the preload, PR_GET_THP_DISABLE 1 (rc $rc)" \
	'[ $rc -eq 0 ] && cmp -s "$tmp/plain.out" "$tmp/hp.out" && grep -q "PR_GET_THP_DISABLE says 1" "$tmp/hp.out"'
rss=$(fact thpoff rss_kb) huge=$(fact thpoff huge_kb)
check "thpoff: the range is huge-mapped all the same ($huge of $rss KiB)" \
	'[ "${rss:-0}" -ge 262144 ] && [ $((${huge:-0} * 100)) -ge $((rss * 99)) ]'
