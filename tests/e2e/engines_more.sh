#!/bin/sh
# engines_more.sh - more engines from Debian, unmodified, plain and under
# the preload (`hugeperm run`): the same output, and while each runs, its
# JIT code huge-mapped in the kernel's view (/proc/PID/smaps).
#   PyPy 3      RWX chunks of 1 MiB, hint-less: served (exec), packed into
#               a huge RWX block;
#   Guile 3     RWX chunks of 256 KiB (lightening), hint-less: served (exec);
#               its GC's heap chunks, hinted at the last one's end: not;
#   qemu-user   TCG's code buffer: 128 MiB PROT_NONE (no MAP_NORESERVE),
#               MADV_HUGEPAGE, mprotect RWX: the kernel's, THP-huge by
#               itself; the preload must leave it so (no reservation held,
#               nothing served, as huge as plain).
# An engine that is not installed is skipped, with the reason.
set -u
srcdir=${srcdir:-..}
tool=$(pwd)/tools/hugeperm
export HUGEPERM_PRELOAD_LIB=$(pwd)/.libs/libhugeperm-preload.so
engines=$(cd "$srcdir/tests/e2e/engines" && pwd)
. "$srcdir/tests/lib/tap.sh"
. "$srcdir/tests/lib/jit_held.sh"
echo "1..11"

case "${HP_LDFLAGS:-}" in *sanitize*)
	skip 11 "the preload is tested in the plain build"
	exit 0 ;;
esac

# The sum of preload report key $2 over the processes of report $1.
sum() { python3 -c 'import json,sys; print(sum(p["preload"][sys.argv[2]] for p in json.load(open(sys.argv[1]))))' "$1" "$2"; }

# An engine that the preload serves by its executable mappings: NAME, then
# the command (its workload's arguments last; "wait" is added to hold it
# once it has compiled).  Held plain, then preloaded: the same output, its
# RWX mappings served, and while it runs >= 90% of its anonymous executable
# memory huge-mapped, at least as much as the JIT used plain.  3 checks.
exec_engine() {
	name=$1
	shift
	held "$tmp/$name.plain" "$@" wait
	p_huge=$huge p_rss=$rss
	held "$tmp/$name.hp" "$tool" run --json -o "$tmp/$name.json" -- "$@" wait
	check "$name: the same output under the preload ($(head -1 "$tmp/$name.plain"))" \
		'grep -q "^pid" "$tmp/$name.plain" &&
		 [ "$(head -1 "$tmp/$name.plain")" = "$(head -1 "$tmp/$name.hp")" ]'
	served=$(sum "$tmp/$name.json" exec)
	check "$name: its RWX code chunks were served ($served)" '[ "$served" -ge 1 ]'
	echo "# $name: JIT memory huge-mapped while it runs: plain $p_huge of $p_rss KiB, preloaded $huge of $rss KiB"
	check "$name: >= 90% of its JIT code huge-mapped while it runs ($huge of $rss KiB; plain $p_rss KiB)" \
		'[ "$p_rss" -ge 256 ] && [ "$huge" -ge "$p_rss" ] && [ $((huge * 10)) -ge $((rss * 9)) ]'
}

# --- PyPy 3 -------------------------------------------------------------------
if command -v pypy3 >/dev/null 2>&1; then
	exec_engine pypy3 pypy3 "$engines/jit.py" 400
else
	skip 3 "pypy3 is not installed (apt-get install pypy3)"
fi

# --- Guile 3 ------------------------------------------------------------------
if command -v guile >/dev/null 2>&1 && guile -c '(exit (if (string-prefix? "3." (version)) 0 1))' 2>/dev/null; then
	exec_engine guile guile --no-auto-compile "$engines/jit.scm" 40
	# Its collector's heap chunks ask at the end of the last one, some
	# 64 KiB-aligned by chance: data, the kernel's (preload/grow.c).
	areas=$(sum "$tmp/guile.json" areas)
	check "guile: its GC heap chunks are left to the kernel ($areas served as code areas)" \
		'[ "$areas" = 0 ]'
else
	skip 4 "guile 3 is not installed (apt-get install guile-3.0)"
fi

# --- qemu-user's TCG ------------------------------------------------------------
# The guest: tests/e2e/engines/tcg.c, built here for this host (-O0: quick
# to build, 6 MiB of TCG code).
if command -v qemu-x86_64 >/dev/null 2>&1 && ${CC:-cc} -O0 -o "$tmp/tcg" "$engines/tcg.c" 2> "$tmp/cc.err"; then
	held "$tmp/qemu.plain" qemu-x86_64 "$tmp/tcg" 2000 wait
	p_huge=$huge p_rss=$rss
	held "$tmp/qemu.hp" "$tool" run --json -o "$tmp/qemu.json" -- qemu-x86_64 "$tmp/tcg" 2000 wait
	check "qemu-x86_64: the same output under the preload ($(head -1 "$tmp/qemu.plain"))" \
		'grep -q "^pid" "$tmp/qemu.plain" &&
		 [ "$(head -1 "$tmp/qemu.plain")" = "$(head -1 "$tmp/qemu.hp")" ]'
	taken=0
	for k in exec areas reservations resv_held; do taken=$((taken + $(sum "$tmp/qemu.json" $k))); done
	check "qemu-x86_64: its code buffer is left to the kernel (nothing served or held: $taken)" \
		'[ "$taken" = 0 ]'
	echo "# qemu-x86_64: TCG code huge-mapped while it runs: plain $p_huge of $p_rss KiB, preloaded $huge of $rss KiB"
	check "qemu-x86_64: TCG's code buffer huge by itself, plain ($p_huge of $p_rss KiB)" \
		'[ "$p_rss" -ge 2048 ] && [ "$p_huge" = "$p_rss" ]'
	check "qemu-x86_64: ... and as huge under the preload ($huge of $rss KiB)" \
		'[ "$rss" -ge 2048 ] && [ "$huge" = "$rss" ] && [ "$huge" -ge "$p_huge" ]'
else
	skip 4 "qemu-x86_64 is not installed (apt-get install qemu-user), or no C compiler"
fi
