#!/bin/sh
# shared_code.sh - JIT code in shared memory (preload/shared.c), plain and
# under the preload: tests/e2e/shared_code (a memfd or an O_TMPFILE file
# mapped RW + RX, as BEAM and sljit do; anonymous shared memory flipped
# RW <-> RX, as PHP does), then the real engines, Erlang's BEAM JIT and
# PHP's opcache tracing JIT.  Each must print the same as without the
# preload, and, while it runs, >= 90% of its JIT code (the resident pages
# of its executable shared VMAs, /proc/PID/smaps) must be huge-mapped
# (ShmemPmdMapped + FilePmdMapped).  An engine that is not installed is
# skipped, with the reason.
set -u
srcdir=${srcdir:-..}
tool=$(pwd)/tools/hugeperm
lib=$(pwd)/.libs/libhugeperm-preload.so
prog=$(pwd)/tests/e2e/shared_code
export HUGEPERM_PRELOAD_LIB=$lib
. "$srcdir/tests/lib/tap.sh"
echo "1..22"
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
# The largest value of preload key $2 over the processes of report $1.
most() { json "$1" "max(p['preload']['$2'] for p in d)"; }

case "${HP_LDFLAGS:-}" in *sanitize*)
	skip 22 "the preload is tested in the plain build"
	exit 0 ;;
esac

# JIT code of process $1: "huge_kb rss_kb" summed over its executable
# MAP_SHARED VMAs (the RX views of memfds, anonymous shared memory).
jit_kb() {
	python3 - "$1" <<'PY'
import sys
huge = rss = 0
on = False
for line in open("/proc/%s/smaps" % sys.argv[1]):
    f = line.split()
    if "-" in f[0] and not f[0].endswith(":"):
        on = len(f) > 1 and f[1][2] == "x" and f[1][3] == "s"
    elif on and f[0] == "Rss:":
        rss += int(f[1])
    elif on and f[0] in ("ShmemPmdMapped:", "FilePmdMapped:"):
        huge += int(f[1])
print(huge, rss)
PY
}

# Run "$@" (which prints "pid N" and then waits for a line on stdin) with
# its output in $1; once it has printed its pid, wait up to 3 s for the
# collapser (the preload collapses in the background), then take its JIT
# code's smaps figures into $huge and $rss, and let it finish.
run_held() {
	out=$1
	shift
	mkfifo "$out.in"
	"$@" < "$out.in" > "$out" 2>&1 &
	held=$!
	exec 3> "$out.in"
	i=0
	while ! grep -q 'pid [0-9]*$' "$out" && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
	pid=$(sed -n 's/.*pid \([0-9]*\)$/\1/p' "$out" | head -1)
	huge=0 rss=0
	i=0
	while [ -n "$pid" ] && [ $i -lt 30 ]; do
		set -- $(jit_kb "$pid")
		huge=${1:-0} rss=${2:-0}
		[ "$rss" -gt 0 ] && [ $((huge * 10)) -ge $((rss * 9)) ] && break
		sleep 0.1
		i=$((i + 1))
	done
	echo >&3
	exec 3>&-
	wait $held
}

# --- our own program: the semantics a dual-mapping JIT relies on -----------
for mode in memfd tmpfile anon; do
	"$prog" $mode > "$tmp/$mode.plain" 2> "$tmp/$mode.err"
	rc0=$?
	"$tool" run --json -o "$tmp/$mode.json" -- "$prog" $mode --huge > "$tmp/$mode.hp" \
		2> "$tmp/$mode.err"
	rc1=$?
	sed 's/^/# /' "$tmp/$mode.err"
	check "shared_code $mode: the same output under the preload, views shared both ways" \
		'[ $rc0 = 0 ] && [ $rc1 = 0 ] && [ -s "$tmp/$mode.plain" ] && cmp -s "$tmp/$mode.plain" "$tmp/$mode.hp"'
	done_n=$(json "$tmp/$mode.json" 'sum(p["preload"]["shared_collapsed"] for p in d)')
	check "shared_code $mode: its code huge-mapped while it ran ($done_n units collapsed)" \
		'[ $rc1 = 0 ] && [ "$done_n" -ge 2 ]'
done

# No address space to spare for the aligned placement: the kernel's mapping,
# where the kernel puts it; the same errors when even that does not fit.
"$prog" rlimit > "$tmp/rlimit.plain" 2>&1
"$tool" run --json -o "$tmp/rlimit.json" -- "$prog" rlimit > "$tmp/rlimit.hp" 2>&1
aligned=$(json "$tmp/rlimit.json" 'sum(p["preload"]["shared_aligned"] for p in d)')
views=$(json "$tmp/rlimit.json" 'sum(p["preload"]["shared_views"] for p in d)')
check "rlimit: without room to align, the view is the kernel's as asked ($views views, $aligned aligned)" \
	'[ -s "$tmp/rlimit.plain" ] && cmp -s "$tmp/rlimit.plain" "$tmp/rlimit.hp" && [ "$views" = 2 ] && [ "$aligned" = 1 ]'

# --- sljit's PROT allocator: a 64 KiB file per chunk, packed into windows ----
"$prog" chunks --plain > "$tmp/chunks.plain" 2> "$tmp/chunks.err"
rc0=$?
"$tool" run --json -o "$tmp/chunks.json" -- "$prog" chunks --huge > "$tmp/chunks.hp" \
	2>> "$tmp/chunks.err"
rc1=$?
sed 's/^/# /' "$tmp/chunks.err"
check "chunks: the same output under the preload, >= 90% of the RX pages PMD-mapped each time (PAGEMAP_SCAN)" \
	'[ $rc0 = 0 ] && [ $rc1 = 0 ] && [ -s "$tmp/chunks.plain" ] && cmp -s "$tmp/chunks.plain" "$tmp/chunks.hp"'
# The parent's report is the one with the most chunks (the child's is a copy).
packed=$(most "$tmp/chunks.json" shared_packed)
adopted=$(most "$tmp/chunks.json" shared_packed_adopted)
windows=$(most "$tmp/chunks.json" shared_packed_windows)
collapsed=$(most "$tmp/chunks.json" shared_packed_collapsed)
lost=$(most "$tmp/chunks.json" shared_packed_lost)
echo "# chunks: $packed packed in $windows windows, $adopted adopted, $collapsed collapses, $lost lost (the fork's)"
check "chunks: all 550 chunks packed and adopted ($packed, $adopted), windows collapsed ($collapsed)" \
	'[ "$packed" = 550 ] && [ "$adopted" = 550 ] && [ "$collapsed" -ge "$windows" ] && [ "$lost" = 400 ]'
run_held "$tmp/chunks.wait" "$tool" run -- "$prog" chunks --huge wait
echo "# chunks: $huge of $rss kB of JIT code huge-mapped while it runs"
check "chunks: >= 90% of the executable shared memory huge-mapped while it runs ($huge of $rss kB)" \
	'[ "$rss" -gt 20000 ] && [ $((huge * 10)) -ge $((rss * 9)) ]'
run_held "$tmp/chunks.wait0" "$prog" chunks --plain wait
echo "# chunks plain: $huge of $rss kB huge-mapped"
check "chunks plain: 64 KiB files are on 4 KiB pages ($huge of $rss kB): the test can tell" \
	'[ "$rss" -gt 20000 ] && [ "$huge" = 0 ]'

# The chunks used in ways sljit does not: kept, dup'ed, inherited fds are
# the program's files; moved views are followed, their slots never reused.
"$prog" edges > "$tmp/edges.plain" 2>&1
"$tool" run --json -o "$tmp/edges.json" -- "$prog" edges > "$tmp/edges.hp" 2>&1
sed 's/^/# /' "$tmp/edges.hp"
kept=$(most "$tmp/edges.json" shared_packed_kept)
adopted=$(most "$tmp/edges.json" shared_packed_adopted)
lost=$(most "$tmp/edges.json" shared_packed_lost)
check "edges: the same output; kept fd, dup, no FD_CLOEXEC, fork before close left the program's ($kept), the rest adopted ($adopted), moved views' slots lost ($lost)" \
	'[ -s "$tmp/edges.plain" ] && cmp -s "$tmp/edges.plain" "$tmp/edges.hp" && [ "$kept" = 4 ] && [ "$adopted" -ge 9 ] && [ "$lost" -ge 1 ]'

# The same after an RTLD_DEEPBIND dlopen: adoption reads /proc/self/maps
# instead of trusting the hooks' view table; the same answers.
"$tool" run --json -o "$tmp/edges2.json" -- "$prog" edges deepbind > "$tmp/edges2.hp" 2>&1
k2=$(most "$tmp/edges2.json" shared_packed_kept)
a2=$(most "$tmp/edges2.json" shared_packed_adopted)
check "edges after RTLD_DEEPBIND: the same output, the same chunks kept ($k2) and adopted ($a2) from /proc/self/maps" \
	'cmp -s "$tmp/edges.plain" "$tmp/edges2.hp" && [ "$k2" = "$kept" ] && [ "$a2" = "$adopted" ]'

# No fd to spare: the preload's memfd_create and its look at /proc/self/fd
# fail; the program's chunks are the kernel's mappings and run.
"$prog" nofile > "$tmp/nofile.plain" 2>&1
"$tool" run --json -o "$tmp/nofile.json" -- "$prog" nofile > "$tmp/nofile.hp" 2>&1
pk=$(json "$tmp/nofile.json" '"%d %d %d %d" % tuple(d[0]["preload"]["shared_packed" + k] for k in ("", "_adopted", "_kept", "_failed"))')
check "nofile: the same output; no window without an fd, no adoption without /proc/self/fd (packed adopted kept failed: $pk)" \
	'[ -s "$tmp/nofile.plain" ] && cmp -s "$tmp/nofile.plain" "$tmp/nofile.hp" && [ "$pk" = "2 1 1 1" ]'

# Bad input stays the kernel's answer: a shared mapping of a bad fd
# (EBADF), anonymous shared memory at an unaligned offset (EINVAL).
cat > "$tmp/bad.py" <<'PY'
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
for fd, flags, off in ((999, 0x01, 0), (-1, 0x21, 100)):  # MAP_SHARED, |MAP_ANONYMOUS
    ctypes.set_errno(0)
    p = libc.mmap(None, 4 << 20, 5, flags, fd, off)
    print(p == ctypes.c_void_p(-1).value, ctypes.get_errno(), end=" ")
print()
PY
python3 "$tmp/bad.py" > "$tmp/bad.plain" 2>&1
LD_PRELOAD=$lib python3 "$tmp/bad.py" > "$tmp/bad.hp" 2>&1
check "bad input: MAP_FAILED with EBADF and EINVAL, as without the preload ($(cat "$tmp/bad.hp"))" \
	'cmp -s "$tmp/bad.plain" "$tmp/bad.hp" && [ "$(cat "$tmp/bad.hp")" = "True 9 True 22 " ]'

# --- Erlang/OTP's BEAM JIT: a memfd mapped RX + RW ---------------------------
if command -v erl >/dev/null 2>&1 && command -v erlc >/dev/null 2>&1; then
	erlc -o "$tmp" "$srcdir/tests/e2e/engines/jit.erl"
	erl -noshell -pa "$tmp" -run jit main 20 > "$tmp/erl.plain"
	"$tool" run --json -o "$tmp/erl.json" -- erl -noshell -pa "$tmp" -run jit main 20 \
		> "$tmp/erl.hp"
	check "erl: the same output under the preload ($(cat "$tmp/erl.plain"))" \
		'[ -s "$tmp/erl.plain" ] && cmp -s "$tmp/erl.plain" "$tmp/erl.hp"'
	views=$(json "$tmp/erl.json" 'sum(p["preload"]["shared_code_views"] for p in d)')
	aligned=$(json "$tmp/erl.json" 'sum(p["preload"]["shared_aligned"] for p in d)')
	done_n=$(json "$tmp/erl.json" 'sum(p["preload"]["shared_collapsed"] for p in d)')
	refused=$(json "$tmp/erl.json" 'sum(p["preload"]["shared_collapse_failed"] for p in d)')
	echo "# erl: $views code views, $aligned views placed aligned, $done_n units collapsed, $refused refused"
	check "erl: its RX views recognised and placed aligned ($views code views, $aligned aligned)" \
		'[ "$views" -ge 1 ] && [ "$aligned" -ge 2 ] && [ "$refused" = 0 ]'
	run_held "$tmp/erl.wait" "$tool" run -- erl -noshell -pa "$tmp" -run jit main 20 wait
	echo "# erl: $huge of $rss kB of JIT code huge-mapped while it runs"
	check "erl: >= 90% of its JIT code huge-mapped while it runs ($huge of $rss kB)" \
		'[ "$rss" -gt 1024 ] && [ $((huge * 10)) -ge $((rss * 9)) ]'
	run_held "$tmp/erl.wait0" erl -noshell -pa "$tmp" -run jit main 20 wait
	echo "# erl plain: $huge of $rss kB of JIT code huge-mapped"
	check "erl plain: its JIT code is on 4 KiB pages ($huge of $rss kB): the test can tell" \
		'[ "$rss" -gt 1024 ] && [ "$huge" = 0 ]'
else
	skip 4 "erl/erlc are not installed (apt-get install erlang-base)"
fi

# --- PHP's opcache tracing JIT: its buffer in anonymous shared memory ---------
php_jit="-d opcache.enable_cli=1 -d opcache.jit_buffer_size=64M -d opcache.jit=tracing"
if command -v php >/dev/null 2>&1 && php $php_jit -r 'exit(function_exists("opcache_get_status") && opcache_get_status()["jit"]["on"] ? 0 : 1);' 2>/dev/null; then
	phpw=$srcdir/tests/e2e/engines/jit.php
	php $php_jit "$phpw" 500 > "$tmp/php.plain"
	"$tool" run --json -o "$tmp/php.json" -- php $php_jit "$phpw" 500 > "$tmp/php.hp"
	check "php: the same output under the preload ($(cat "$tmp/php.plain"))" \
		'[ -s "$tmp/php.plain" ] && cmp -s "$tmp/php.plain" "$tmp/php.hp"'
	# opcache.so is loaded RTLD_DEEPBIND: its buffer is found in the maps.
	views=$(json "$tmp/php.json" 'sum(p["preload"]["shared_adopted"] for p in d)')
	refused=$(json "$tmp/php.json" 'sum(p["preload"]["shared_collapse_failed"] for p in d)')
	check "php: its JIT buffer found executable in /proc/self/maps ($views), no collapse refused ($refused)" \
		'[ "$views" -ge 1 ] && [ "$refused" = 0 ]'
	run_held "$tmp/php.wait" "$tool" run -- php $php_jit "$phpw" 500 wait
	echo "# php: $huge of $rss kB of JIT code huge-mapped while it runs"
	check "php: >= 90% of its JIT code huge-mapped while it runs ($huge of $rss kB)" \
		'[ "$rss" -gt 0 ] && [ $((huge * 10)) -ge $((rss * 9)) ]'
else
	skip 3 "php with opcache's JIT is not installed (apt-get install php-cli php-opcache)"
fi
