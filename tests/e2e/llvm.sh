#!/bin/sh
# llvm.sh - hugeperm-lli against lli: IR programs of our own (loops,
# recursion, calls into libc, globals, exceptions, exit statuses, thousands
# of functions in one module and in a module each) print the same and exit
# the same; their code is packed and huge-mapped (the kernel's smaps); no
# mapping is ever writable and executable and no code page changes
# protection (every mmap/mprotect of the run, seen by strace).
set -u
srcdir=${srcdir:-..}
ir=$(cd "$srcdir" && pwd)/tests/e2e/llvm
hplli=$(pwd)/llvm/hugeperm-lli
lli=${LLI:-$(command -v lli-14 || command -v lli || echo lli)}
. "$srcdir/tests/lib/tap.sh"
echo "1..18"

if ! command -v "$lli" >/dev/null 2>&1; then
	skip 18 "no lli to compare with (Debian: llvm-runtime)"
	exit 0
fi

# same NAME ARGS...: stdout and exit status of lli and hugeperm-lli agree.
same() {
	name=$1
	shift
	(cd "$ir" && "$lli" "$@") > "$tmp/lli.out" 2> "$tmp/lli.err"
	want=$?
	(cd "$ir" && "$hplli" $HP_OPTS "$@") > "$tmp/hp.out" 2> "$tmp/hp.err"
	got=$?
	sed 's/^/# /' "$tmp/hp.err"
	check "$name: the output and exit status of lli ($want, $(wc -l < "$tmp/lli.out") lines)" \
		'[ $want -eq $got ] && cmp -s "$tmp/lli.out" "$tmp/hp.out"'
}

HP_OPTS=
same "loops" loops.ll
same "recursion" recursion.ll
same "libc (printf, malloc, qsort calling back, status 3)" libc.ll
same "globals (constructor, destructor, pointer table, status 42)" globals.ll
same "exceptions thrown and caught" eh.ll
same "argv, and exit() with buffered output" exit.ll one "two words"
HP_OPTS=--lazy
same "--lazy: globals" globals.ll
same "--lazy: exceptions" eh.ll

# Thousands of functions in one module.
python3 "$ir/many.py" 3000 > "$tmp/many.ll"
HP_OPTS=
same "3000 functions in one module" "$tmp/many.ll"

# A module a function, as function-at-a-time JITs hand them over: lli's
# ORC gives each object's code a page of its own.
nf=1500
mkdir "$tmp/split"
python3 "$ir/many.py" $nf "$tmp/split"
extra=$(i=0; while [ $i -lt $nf ]; do printf -- "-extra-module=f%d.ll " $i; i=$((i + 1)); done)
(cd "$tmp/split" && "$lli" --jit-kind=orc $extra main.ll) > "$tmp/lli.out" 2>&1
(cd "$tmp/split" && "$hplli" --stats=json $extra main.ll) > "$tmp/hp.out" 2> "$tmp/stats.json"
check "$nf modules of a function each: the output of lli --jit-kind=orc ($(tail -1 "$tmp/lli.out"))" \
	'cmp -s "$tmp/lli.out" "$tmp/hp.out"'
set -- $(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['code_allocs'], d['code_bytes'], d['code_pages'])" "$tmp/stats.json" 2>/dev/null)
allocs=${1:-0} bytes=${2:-0} pages=${3:-999999}
echo "# $allocs code allocations, $bytes bytes of code on $pages pages"
check "their code packed: $allocs code allocations on $pages pages (lli: one at least each)" \
	'[ "$allocs" -ge $nf ] && [ $((pages * 10)) -le $nf ]'

# While it runs: the code is in a huge-mapped RX mapping of ours, and no
# mapping is writable and executable.
mkfifo "$tmp/in"
(cd "$tmp/split" && exec "$hplli" $extra main.ll hold) < "$tmp/in" > "$tmp/held.out" 2>&1 &
held=$!
exec 3> "$tmp/in"
i=0
while ! grep -q 'pid [0-9]*$' "$tmp/held.out" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
set -- $(sed -n 's/^code 0x\([0-9a-f]*\) pid \([0-9]*\)$/\1 \2/p' "$tmp/held.out")
addr=${1:-0} pid=${2:-0}
view=$(python3 - "$pid" "$addr" <<'PY'
import sys
pid, addr = sys.argv[1], int(sys.argv[2], 16)
vma = None; found = None; wx = 0
for line in open("/proc/%s/smaps" % pid):
    f = line.split()
    if "-" in f[0] and len(f) >= 5 and ":" in f[3]:
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        vma = [lo, hi, f[1], " ".join(f[5:]), 0]
        if "w" in f[1] and "x" in f[1]:
            wx += 1
        if lo <= addr < hi:
            found = vma
    elif vma is not None and f[0] in ("AnonHugePages:", "ShmemPmdMapped:", "FilePmdMapped:"):
        vma[4] += int(f[1])
print(found[2] if found else "none", found[4] if found else 0, wx, (found[3] or "anon").replace(" ", "_") if found else "-")
PY
)
echo >&3
exec 3>&-
wait $held
set -- $view
perms=${1:-none} hugekb=${2:-0} wxn=${3:-1}
echo "# code at 0x$addr: $view (perms, huge kB, rwx mappings, name)"
check "the running code is huge-mapped in an r-x mapping ($perms, $hugekb kB huge)" \
	'[ "${perms%?}" = "r-x" ] && [ "$hugekb" -ge 2048 ]'
check "no mapping writable and executable while it runs ($wxn)" '[ "$wxn" -eq 0 ]'

# Every mmap and mprotect of a run, hugeperm-lli's and lli's.
if command -v strace >/dev/null 2>&1; then
	calls='trace=mmap,mprotect,pkey_mprotect,mremap'
	(cd "$tmp/split" && strace -f -qq -e "$calls" -o "$tmp/hp.strace" "$hplli" $extra main.ll) >/dev/null 2>&1
	(cd "$tmp/split" && strace -f -qq -e "$calls" -o "$tmp/lli.strace" "$lli" --jit-kind=orc $extra main.ll) >/dev/null 2>&1
	wx=$(grep -c 'PROT_WRITE|PROT_EXEC\|PROT_EXEC|PROT_WRITE' "$tmp/hp.strace")
	hpx=$(grep -c '^[0-9]* *mprotect(.*PROT_EXEC' "$tmp/hp.strace")
	llix=$(grep -c '^[0-9]* *mprotect(.*PROT_EXEC' "$tmp/lli.strace")
	echo "# mprotect to executable: hugeperm-lli $hpx, lli $llix; writable+executable: $wx"
	check "no mapping ever asked writable and executable" '[ "$wx" -eq 0 ]'
	check "no page made executable by mprotect ($hpx; lli: $llix)" \
		'[ "$hpx" -eq 0 ] && [ "$llix" -ge $nf ]'
else
	skip 2 "no strace"
fi

# Errors: a message on stderr and a failing status, as lli.
"$hplli" "$tmp/missing.ll" > /dev/null 2> "$tmp/err"
st=$?
check "a missing file: status $st, says so ($(head -c 80 "$tmp/err"))" \
	'[ $st -ne 0 ] && grep -q "missing.ll" "$tmp/err"'
printf 'define i32 @main() {\n  ret i32 %%nope\n}\n' > "$tmp/bad.ll"
"$hplli" "$tmp/bad.ll" > /dev/null 2> "$tmp/err"
st=$?
check "bad IR: status $st, the parser's message ($(head -1 "$tmp/err" | head -c 80))" \
	'[ $st -ne 0 ] && grep -q "bad.ll:2:.*error" "$tmp/err"'
printf 'define i32 @f() {\n  ret i32 0\n}\n' > "$tmp/nomain.ll"
"$hplli" "$tmp/nomain.ll" > /dev/null 2> "$tmp/err"
st=$?
"$hplli" --bogus "$tmp/nomain.ll" > /dev/null 2>&1
bogus=$?
check "no main: status $st, says so; an unknown option: status $bogus" \
	'[ $st -ne 0 ] && grep -q "main.*not found" "$tmp/err" && [ $bogus -eq 2 ]'
