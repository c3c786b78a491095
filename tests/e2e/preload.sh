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
tmp=$(mktemp -d)
trap 'rm -f "$tap"; rm -rf "$tmp"' EXIT
LD_PRELOAD=$lib ./tests/e2e/preload_ops > "$tap" 2>&1
rc=$?
# Renumber preload_ops' plan into ours: its tests, then our own.
plan=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$tap")
echo "1..$((plan + 22))"
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

# Code the program unmapped never runs again, in every flip mode and with
# packing off: pieces of served memory that stay mapped after a munmap (a
# packed area's block, half an area, an allocation never reused) hold int3
# if they held code (stale_ops stale: a call there stops with SIGTRAP or
# SIGSEGV, as on the kernel's unmapped page; new areas read zero).
for mode in "HUGEPERM_PRELOAD_FLIP=block" "HUGEPERM_PRELOAD_PACK=0" \
	"HUGEPERM_PRELOAD_FLIP=exact" "HUGEPERM_PRELOAD_FLIP=rwx"; do
	n=$((n + 1))
	out=$(env "$mode" LD_PRELOAD=$lib ./tests/e2e/stale_ops stale 2>&1)
	rc=$?
	cases=$(echo "$out" | grep -c -E '^stale [a-z-]+ (ok|no room \(ENOMEM\))$')
	if [ $rc -eq 0 ] && [ "$cases" -eq 9 ]; then
		echo "ok $n - $mode: unmapped code never runs again (9 cases: $(echo "$out" | grep -c ' ok$') ok)"
	else
		echo "not ok $n - $mode: unmapped code never runs again"
		echo "$out" | sed 's/^/# /'
	fi
done

# The fill of an unmapped area's pages, counted in the report; when the
# kernel refuses every way to write them (pwrite64 to /proc/self/mem and
# mprotect failed by a seccomp filter), or refuses to make the block RX
# again after the fill (mprotect with PROT_EXEC refused), the munmap still
# succeeds and the report says so (scrub_failed).
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[0]['preload']['$1'])" "$2" 2>/dev/null; }
for how in "" denied noexec; do
	HUGEPERM_PRELOAD_LIB=$lib ./tools/hugeperm run --json -o "$tmp/s.json" -- \
		./tests/e2e/stale_ops scrub $how > "$tmp/err" 2>&1
	rc=$?
	got="$(cat "$tmp/err"), scrubbed $(field scrubbed "$tmp/s.json"), scrub_failed $(field scrub_failed "$tmp/s.json")"
	case "$how" in
	"") want="scrub munmap 0 int3 1 prot 5, scrubbed 1, scrub_failed 0"
	    what="an unmapped packed area that ran holds int3, its block RX again, counted (scrubbed)" ;;
	denied) want="scrub munmap 0 int3 0 prot 5, scrubbed 0, scrub_failed 1"
	    what="pwrite64 and mprotect refused: the munmap succeeds, the fill that could not be made is counted (scrub_failed)" ;;
	noexec) want="scrub munmap 0 int3 1 prot 3, scrubbed 0, scrub_failed 1"
	    what="PROT_EXEC refused after the fill: the munmap succeeds, the block left RW is counted (scrub_failed)" ;;
	esac
	n=$((n + 1))
	if [ $rc -eq 0 ] && [ "$got" = "$want" ]; then echo "ok $n - $what"
	else echo "not ok $n - $what ($got)"; fi
done

# `hugeperm run --stats` and --json report on programs however they leave:
# with environ cleared before exit (PHP), by _exit (Python's os._exit), by
# the exit_group system call itself (qemu), which runs no code of ours.
tool=./tools/hugeperm
ops=./tests/e2e/preload_ops
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; sed 's/^/# /' "$tmp/err"; fi; }
for how in clearenv _exit; do
	HUGEPERM_PRELOAD_LIB=$lib "$tool" run --stats -- "$ops" $how 2> "$tmp/err"
	rc=$?
	check "run --stats of a program that leaves by $how: its report" \
		'[ $rc -eq 0 ] && grep -q "served: *1 executable mappings" "$tmp/err"'
	HUGEPERM_PRELOAD_LIB=$lib "$tool" run --json -o "$tmp/r.json" -- "$ops" $how 2> "$tmp/err"
	check "run --json of a program that leaves by $how: its report" \
		'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if len(d)==1 and d[0][\"preload\"][\"exec\"]==1 else 1)" "$tmp/r.json"'
done
HUGEPERM_PRELOAD_LIB=$lib "$tool" run --stats -- "$ops" exit_group 2> "$tmp/err"
rc=$?
check "run --stats of a program that leaves by the exit_group system call: no report, and says why" \
	'[ $rc -eq 0 ] && grep -q "preload_ops.*exit_group" "$tmp/err" && ! grep -q "did not load" "$tmp/err"'
HUGEPERM_PRELOAD_LIB=$lib "$tool" run --json -o "$tmp/r.json" -- "$ops" exit_group 2> "$tmp/err"
check "run --json of it: an empty array, and the same message" \
	'[ "$(cat "$tmp/r.json")" = "[]" ] && grep -q "preload_ops.*exit_group" "$tmp/err"'
other=$(ldd /bin/true | sed -n 's/.*=> \(\/[^ ]*libc\.so[^ ]*\) .*/\1/p')
HUGEPERM_PRELOAD_LIB=$other "$tool" run --stats -- /bin/true 2> "$tmp/err"
check "run --stats of a program that did not load the preload says so" \
	'[ -n "$other" ] && grep -q "did not load the preload" "$tmp/err"'

# Signal handlers that map and protect memory while this thread flips a
# served area (kernel.c, lock()): no deadlock, everything intact.
out=$(LD_PRELOAD=$lib "$ops" handlers 2>&1)
rc=$?
echo "# $out"
check "a SIGUSR1 handler maps, protects and unmaps its own memory while the thread flips a served area for 0.5 s: no deadlock, its memory and the area intact" \
	'[ $rc -eq 0 ]'
# Exact mode flips pages as asked, and a block flipped again and again is
# collapsed once quiet, not after every flip: the kernel's own counts of
# splits and collapses stay a handful for 1000 flip pairs (main at 70b68ea
# made 1001 and 1000: a split and a collapse per pair), the area is RX in
# the kernel, and once the flips stop its block is huge again.
vm() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
s0=$(vm thp_split_pmd); c0=$(vm thp_collapse_alloc)
LD_PRELOAD=$lib HUGEPERM_PRELOAD_FLIP=exact "$ops" flipsquiet 1000 > "$tmp/err" 2>&1
rc=$?
s1=$(vm thp_split_pmd); c1=$(vm thp_collapse_alloc)
echo "# exact mode, 1000 flip pairs of a served area: $(cat "$tmp/err"); thp_split_pmd +$((s1 - s0)), thp_collapse_alloc +$((c1 - c0))"
check "exact mode: 1000 flip pairs of a served area split and collapse its block 1-10 times, not once a pair (the kernel's counts); RX as asked, huge again once quiet" \
	'[ $rc -eq 0 ] && grep -q "^flips 1000 served 1 prot 5 huge 2048$" "$tmp/err" &&
	 [ $((s1 - s0)) -ge 1 ] && [ $((s1 - s0)) -le 10 ] && [ $((c1 - c0)) -ge 1 ] && [ $((c1 - c0)) -le 10 ]'
# A served flip takes the lock without touching the signal mask.
if command -v strace >/dev/null 2>&1; then
	strace -f -c -o "$tmp/sc" env LD_PRELOAD=$lib "$ops" flips 1000 > "$tmp/err" 2>&1
	rc=$?
	masks=$(awk '$NF == "rt_sigprocmask" { print $4 }' "$tmp/sc")
	masks=${masks:-0}
	flipcalls=$(awk '$NF == "mprotect" { print $4 }' "$tmp/sc")
	echo "# strace -c -f: $masks rt_sigprocmask, ${flipcalls:-0} mprotect calls for 1000 served flip pairs"
	check "1000 served RX/RW flip pairs make no rt_sigprocmask call ($masks in the whole run)" \
		'[ $rc -eq 0 ] && grep -q "flips 1000 served 1" "$tmp/err" && [ "$masks" -lt 100 ] && [ "${flipcalls:-0}" -ge 2000 ]'
	# Block names: asked of the kernel once when it has none (the probe),
	# not once a committed block (preload_ops commits ~280 of them).
	strace -f -e trace=prctl -o "$tmp/names" env LD_PRELOAD=$lib "$ops" > "$tmp/err" 2>&1
	rc=$?
	named=$(grep -c 'PR_SET_VMA_ANON_NAME' "$tmp/names")
	refused=$(grep -c 'PR_SET_VMA_ANON_NAME.*EINVAL' "$tmp/names")
	echo "# PR_SET_VMA_ANON_NAME: $named calls, $refused refused"
	check "a kernel without VMA names is asked once, not once a block ($refused refused of $named)" \
		'[ $rc -eq 0 ] && [ "$refused" -le 1 ] && { [ "$refused" -eq 1 ] || [ "$named" -gt 1 ]; }'
else
	n=$((n + 2))
	echo "not ok $((n - 1)) - strace is not installed (the quick start installs it)"
	echo "not ok $n - strace is not installed"
fi
