#!/bin/sh
# engines.sh - real JIT engines from Debian, unmodified, under the preload
# (through `hugeperm run`): the same output as without it, their code served
# by hugeperm and huge-mapped in the kernel's view while they run, and no
# split storm.  An engine that is not installed is skipped, with the reason.
set -u
srcdir=${srcdir:-..}
tool=$(pwd)/tools/hugeperm
lib=$(pwd)/.libs/libhugeperm-preload.so
export HUGEPERM_PRELOAD_LIB=$lib
. "$srcdir/tests/lib/tap.sh"
echo "1..28"
split() { awk '$1 == "thp_split_pmd" { print $2 }' /proc/vmstat; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# Run "$@" in $tmp (node's --perf-basic-prof leaves a V8 log in its working
# directory) with stdin held open; once it prints a line ending "pid N",
# save `hugeperm stats --json N` to $2, then let it finish.  Its output goes
# to $1; $pid is set.
run_held() {
	out=$1 stats=$2
	shift 2
	mkfifo "$out.in"
	(cd "$tmp" && exec "$@") < "$out.in" > "$out" 2>&1 &
	held=$!
	exec 3> "$out.in"
	i=0
	while ! grep -q 'pid [0-9]*$' "$out" && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
	pid=$(sed -n 's/.*pid \([0-9]*\)$/\1/p' "$out" | head -1)
	"$tool" stats --json "${pid:-0}" > "$stats" 2>&1
	"$tool" stats "${pid:-0}" | sed 's/^/# /'
	echo >&3
	exec 3>&-
	wait $held
}

case "${HP_LDFLAGS:-}" in *sanitize*)
	skip 28 "the preload is tested in the plain build"
	exit 0 ;;
esac

# --- LuaJIT: W<->X flips of whole areas, hinted near its own code ---------
if command -v luajit >/dev/null 2>&1; then
	lua=$(cd "$srcdir" && pwd)/tests/e2e/engines/jit.lua
	luajit "$lua" 400 > "$tmp/plain.out"
	s0=$(split)
	"$tool" run --json -o "$tmp/hp.json" -- luajit "$lua" 400 > /dev/null
	s1=$(split)
	"$tool" run -- luajit "$lua" 400 > "$tmp/hp.out"
	check "luajit: the same result under the preload ($(cat "$tmp/plain.out"))" \
		'cmp -s "$tmp/plain.out" "$tmp/hp.out"'
	areas=$(json "$tmp/hp.json" 'd[0]["preload"]["areas"]')
	flips=$(json "$tmp/hp.json" 'd[0]["preload"]["flips_block"]')
	echo "# luajit: $areas JIT areas served, $flips whole-block flips, thp_split_pmd +$((s1 - s0))"
	check "luajit: its mcode areas were served by hugeperm ($areas)" '[ "$areas" -gt 0 ]'
	# thp_split_pmd is system-wide; allow for one stray split elsewhere.
	check "luajit: $flips flips split $((s1 - s0)) huge pages (no split storm)" \
		'[ "$flips" -gt 100 ] && [ $((s1 - s0)) -le 1 ]'

	# While it runs: the trace's machine code is in a huge-mapped RX VMA of ours.
	run_held "$tmp/wait.out" "$tmp/stats.json" "$tool" run -- luajit "$lua" 400 wait
	set -- $(sed -n 's/^traces \([0-9]*\) mcode \([0-9]*\) pid \([0-9]*\)/\1 \2 \3/p' "$tmp/wait.out")
	traces=${1:-0} mcode=${2:-0}
	check "luajit: the JIT ran ($traces traces with machine code)" '[ "$traces" -gt 100 ]'
	where=$(python3 - "$tmp/stats.json" "$mcode" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); a = int(sys.argv[2])
for v in d["vmas"]:
    if v["start"] <= a < v["end"]:
        print(v["perms"], v["rss_kb"], v["huge_kb"]); break
else:
    print("none 0 0")
PY
)
	echo "# trace code at $(printf '%#x' "$mcode"): VMA $where"
	set -- $where
	perms=$1 rss=$2 huge=$3
	check "luajit: trace code sits in a hugeperm VMA, executable, all huge-mapped ($where)" \
		'[ "$perms" = "r-xp" ] && [ "$rss" -gt 0 ] && [ "$rss" = "$huge" ]'
else
	skip 5 "luajit is not installed (apt-get install luajit)"
fi

# --- LuaJIT with many areas: packed into shared blocks (preload/pack.c) ---
# bench/engines/lua_bigcode.lua, 1,500 loops: about 5 MiB of machine code in
# some 75 mcode areas of 64 KiB, held once compiled while the kernel's view
# is read, plain, packed (the default) and a block per area
# (HUGEPERM_PRELOAD_PACK=0): memory near the plain run's (VmHWM, VmRSS),
# the code huge-mapped (smaps), the blocks few, no split.
if command -v luajit >/dev/null 2>&1; then
	lua=$(cd "$srcdir" && pwd)/bench/engines/lua_bigcode.lua
	# Run luajit on lua_bigcode.lua ("$@" in front: the tool), held once compiled;
	# $1.out: its output, $1.kernel: "hwm_kb rss_kb code_kb huge_kb blocks" of
	# the kernel's view then.
	held_lua() {
		name=$1
		shift
		mkfifo "$tmp/$name.in"
		"$@" luajit -Omaxtrace=65000 -Omaxmcode=262144 "$lua" 1500 40 3000 4 wait \
			< "$tmp/$name.in" > "$tmp/$name.out" 2>&1 &
		job=$!
		exec 3> "$tmp/$name.in"
		i=0
		while ! grep -q 'pid [0-9]*$' "$tmp/$name.out" && [ $i -lt 300 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		pid=$(sed -n 's/^traces .* pid \([0-9]*\)$/\1/p' "$tmp/$name.out")
		python3 - "${pid:-0}" > "$tmp/$name.kernel" <<'PY'
import sys
pid = sys.argv[1]
st = dict(l.split(":", 1) for l in open("/proc/%s/status" % pid))
kb = lambda v: int(v.split()[0])
code = huge = 0
blocks = set()
exe = False
for line in open("/proc/%s/smaps" % pid):
    f = line.split()
    if "-" in f[0] and len(f) >= 5 and ":" not in f[0]:
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        # the JIT's code: executable anonymous memory (no file behind it)
        exe = "x" in f[1] and len(f) == 5
        if exe:
            blocks.update(range(lo >> 21, (hi - 1 >> 21) + 1))
    elif exe and f[0] == "Rss:":
        code += int(f[1])
    elif exe and f[0] == "AnonHugePages:":
        huge += int(f[1])
print(kb(st["VmHWM"]), kb(st["VmRSS"]), code, huge, len(blocks))
PY
		echo >&3
		exec 3>&-
		wait $job
	}

	held_lua plain
	s0=$(split)
	held_lua pack "$tool" run --json -o "$tmp/pack.json"
	s1=$(split)
	HUGEPERM_PRELOAD_PACK=0 held_lua apart "$tool" run --json -o "$tmp/apart.json"

	set -- $(cat "$tmp/plain.kernel")
	p_hwm=${1:-0} p_rss=${2:-0} p_code=${3:-0}
	set -- $(cat "$tmp/pack.kernel")
	k_hwm=${1:-0} k_rss=${2:-0} k_code=${3:-0} k_huge=${4:-0} k_blocks=${5:-0}
	set -- $(cat "$tmp/apart.kernel")
	a_hwm=${1:-0} a_code=${3:-0} a_blocks=${5:-0}
	served=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["preload"]["areas"])' \
		"$tmp/pack.json" 2> /dev/null || echo 0)
	# The mcode areas live then, 64 KiB each, from the plain run's code.  (The
	# preload may serve more areas: LuaJIT's heap chunks, when their hints
	# happen to be 64 KiB-aligned, are taken for areas too.)
	areas=$((p_code / 64))
	echo "# plain: VmHWM $p_hwm kB, VmRSS $p_rss kB, JIT code $p_code kB"
	echo "# packed: VmHWM $k_hwm kB, VmRSS $k_rss kB, JIT code $k_code kB ($k_huge kB huge) in $k_blocks blocks ($served areas served)"
	echo "# a block per area (HUGEPERM_PRELOAD_PACK=0): VmHWM $a_hwm kB, JIT code $a_code kB in $a_blocks blocks"

	check "luajit areas: the same result plain, packed and a block per area ($(tail -1 "$tmp/plain.out"))" \
		'grep -q "^result" "$tmp/plain.out" &&
		 [ "$(tail -1 "$tmp/plain.out")" = "$(tail -1 "$tmp/pack.out")" ] &&
		 [ "$(tail -1 "$tmp/plain.out")" = "$(tail -1 "$tmp/apart.out")" ]'
	check "luajit areas: the JIT mapped many areas ($areas) and a few MiB of code ($p_code kB plain)" \
		'[ "$areas" -ge 40 ] && [ "$served" -ge "$areas" ]'
	# The areas share blocks: at most one block per 32 areas of 64 KiB, plus
	# the open one.
	check "luajit areas, packed: $areas mcode areas in $k_blocks blocks (at most $((areas / 32 + 2)))" \
		'[ "$k_blocks" -ge 1 ] && [ "$k_blocks" -le $((areas / 32 + 2)) ]'
	check "luajit areas, packed: $k_huge of $k_code kB of JIT code huge-mapped (at least 95%)" \
		'[ "$k_code" -gt 0 ] && [ $((k_huge * 100)) -ge $((k_code * 95)) ]'
	# Memory: the blocks' unused part (at most one open block, 2 MiB) and the
	# arena's metadata (block tables, the region table: under 2 MiB) above the
	# plain run; 6 MiB allowed for both, at peak and now.
	check "luajit areas, packed: peak RSS $k_hwm kB, within 6 MiB of plain ($p_hwm kB)" \
		'[ "$k_hwm" -gt 0 ] && [ "$k_hwm" -le $((p_hwm + 6144)) ]'
	check "luajit areas, packed: RSS $k_rss kB, within 6 MiB of plain ($p_rss kB)" \
		'[ "$k_rss" -gt 0 ] && [ "$k_rss" -le $((p_rss + 6144)) ]'
	check "luajit areas, packed: thp_split_pmd +$((s1 - s0)) over the run (at most 1: system-wide)" \
		'[ $((s1 - s0)) -le 1 ]'
	# Not exactly one per area: an area whose hint ends where a mapping of
	# the kernel's does is the kernel's (grow.c), and those share frames;
	# how many depends on the run's layout (63 blocks for ~75 areas seen).
	check "luajit areas, HUGEPERM_PRELOAD_PACK=0: a block per served area ($a_blocks blocks for $areas areas; packed: $k_blocks)" \
		'[ "$a_blocks" -ge $((areas / 2)) ] && [ "$a_blocks" -ge $((k_blocks * 8)) ]'
	check "... which is what packing saves: $((a_hwm - k_hwm)) kB of peak RSS" \
		'[ "$a_hwm" -ge $((k_hwm + areas * 1024)) ]'
else
	skip 9 "luajit is not installed (apt-get install luajit)"
fi

# --- PCRE2's JIT: RWX chunks, never re-protected -----------------------------
if command -v pcre2test >/dev/null 2>&1; then
	re=$srcdir/tests/e2e/engines/regex.txt
	pcre2test -jit "$re" > "$tmp/re.plain"
	"$tool" run --json -o "$tmp/re.json" -- pcre2test -jit "$re" > /dev/null
	"$tool" run -- pcre2test -jit "$re" > "$tmp/re.hp"
	jit=$(grep -c '(JIT)' "$tmp/re.hp")
	check "pcre2test: the same output under the preload" 'cmp -s "$tmp/re.plain" "$tmp/re.hp"'
	check "pcre2test: the JIT made the matches ($jit marked (JIT))" '[ "$jit" -ge 18 ]'
	exec_n=$(json "$tmp/re.json" 'd[0]["preload"]["exec"]')
	rwx=$(json "$tmp/re.json" 'd[0]["hugeperm"]["classes"].get("rwx", {}).get("huge_blocks", 0)')
	splits=$(json "$tmp/re.json" 'd[0]["hugeperm"]["splits"]')
	echo "# pcre2test: $exec_n RWX mappings served, $rwx huge RWX blocks, $splits splits"
	check "pcre2test: its RWX code chunks came from a huge RWX block ($exec_n chunks)" \
		'[ "$exec_n" -gt 0 ] && [ "$rwx" -ge 1 ] && [ "$splits" -eq 0 ]'
else
	skip 3 "pcre2test is not installed (apt-get install pcre2-utils)"
fi

# How many of the code addresses on stdin lie in huge-mapped VMAs of ours,
# by `hugeperm stats --json` output $1: prints "N of M".
code_in_huge() {
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
vmas = [(v["start"], v["end"], v["rss_kb"], v["huge_kb"]) for v in d["vmas"]]
addrs = [int(a, 16) for a in sys.stdin.read().split()]
good = sum(1 for a in addrs if any(s <= a < e and h > 0 and h == r for s, e, r, h in vmas))
print(good, "of", len(addrs))' "$1"
}

# --- node (V8): code committed inside its 512 MiB PROT_NONE code range -------
if command -v node >/dev/null 2>&1; then
	js='let s=0; const fs=[]; for (let j=0;j<300;j++) fs.push(new Function("n","let s=0; for (let i=0;i<n;i++) s+=(i%"+(j%7+2)+")*"+j+"; return s;")); for (let r=0;r<200;r++) for (const f of fs) s+=f(50); console.log(s)'
	node -e "$js" > "$tmp/node.plain"
	s0=$(split)
	"$tool" run --json -o "$tmp/node.json" -- node -e "$js" > "$tmp/node.hp"
	s1=$(split)
	check "node: the same output under the preload ($(cat "$tmp/node.plain"))" \
		'cmp -s "$tmp/node.plain" "$tmp/node.hp"'
	resv=$(json "$tmp/node.json" 'sum(p["preload"]["reservations"] for p in d)')
	merged=$(json "$tmp/node.json" 'sum(p["preload"]["resv_merged"] for p in d)')
	echo "# node: $resv code range(s) served, $merged block merges, thp_split_pmd +$((s1 - s0))"
	check "node: V8's code range was served, and no split storm ($((s1 - s0)))" \
		'[ "$resv" -ge 1 ] && [ $((s1 - s0)) -le 1 ]'
	# While it runs: every function V8 compiled (Sparkplug ^, TurboFan *),
	# as its own perf map lists them, is in a huge-mapped VMA of ours.
	run_held "$tmp/nwait.out" "$tmp/nstats.json" "$tool" run -- node --perf-basic-prof -e \
		"$js; console.log('pid', process.pid); process.stdin.once('data', () => process.exit(0))"
	set -- $(awk '$3 ~ /^JS:[*^]/ { print "0x" $1 }' "/tmp/perf-$pid.map" 2>/dev/null |
		code_in_huge "$tmp/nstats.json")
	rm -f "/tmp/perf-$pid.map"
	good=${1:-0} all=${3:-0}
	echo "# node: $good of $all compiled functions in huge-mapped hugeperm VMAs"
	check "node: all of V8's compiled code is in huge-mapped VMAs of ours ($good of $all)" \
		'[ "$all" -gt 100 ] && [ "$good" = "$all" ]'
else
	skip 3 "node is not installed"
fi

# --- HotSpot: code cache reserved PROT_NONE, committed with MAP_FIXED RWX ----
if command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1; then
	cp "$srcdir/tests/e2e/engines/Jit.java" "$tmp/"
	javac -d "$tmp" "$tmp/Jit.java"
	java -cp "$tmp" Jit > "$tmp/java.plain"
	s0=$(split)
	"$tool" run --json -o "$tmp/java.json" -- java -cp "$tmp" Jit > "$tmp/java.hp"
	s1=$(split)
	check "java: the same output under the preload ($(cat "$tmp/java.plain"))" \
		'cmp -s "$tmp/java.plain" "$tmp/java.hp"'
	resv=$(json "$tmp/java.json" 'sum(p["preload"]["reservations"] for p in d)')
	code=$(json "$tmp/java.json" 'sum(p["preload"]["code_bytes"] for p in d) >> 10')
	chuge=$(json "$tmp/java.json" 'sum(p["preload"]["code_huge_bytes"] for p in d) >> 10')
	echo "# java: $resv code cache(s) served; at exit $chuge of $code KiB of code memory huge;" \
		"thp_split_pmd +$((s1 - s0))"
	check "java: the code cache was served, its committed memory all huge ($chuge of $code KiB)" \
		'[ "$resv" -ge 1 ] && [ "$code" -gt 0 ] && [ "$code" = "$chuge" ] && [ $((s1 - s0)) -le 1 ]'
	# While it runs: the code heaps' bounds (HotSpot's own report) lie in
	# huge-mapped VMAs of ours.
	run_held "$tmp/jwait.out" "$tmp/jstats.json" \
		"$tool" run -- java -XX:+UnlockDiagnosticVMOptions -XX:+PrintCodeCache -cp "$tmp" Jit wait
	set -- $(sed -n 's/.*bounds \[\(0x[0-9a-f]*\),.*/\1/p' "$tmp/jwait.out" |
		code_in_huge "$tmp/jstats.json")
	good=${1:-0} all=${3:-0}
	echo "# java: $good of $all code heaps start in huge-mapped hugeperm VMAs"
	check "java: every code heap starts in a huge-mapped VMA of ours ($good of $all)" \
		'[ "$all" -ge 1 ] && [ "$good" = "$all" ]'
else
	skip 3 "java/javac are not installed (apt-get install openjdk-17-jdk-headless)"
fi

# --- LLVM's lli: sections mapped RW, made executable later: not served -------
# (docs/preload.md says why.)  It must run as without the preload; the
# recording shows the JIT ran: code pages made RX after they were mapped.
if command -v lli >/dev/null 2>&1; then
	ll=$srcdir/tests/e2e/engines/jit.ll
	lli "$ll" > "$tmp/lli.plain"
	"$tool" run --json -o "$tmp/lli.json" -- lli "$ll" > "$tmp/lli.hp"
	check "lli: the same output under the preload ($(cat "$tmp/lli.plain"))" \
		'cmp -s "$tmp/lli.plain" "$tmp/lli.hp"'
	"$tool" record -o "$tmp/lli.hpt" -- lli "$ll" > /dev/null 2>&1
	later=$("$tool" dump "$tmp/lli.hpt" | awk '$3 == "protect" && $6 == "r-x"' | wc -l)
	served=$(json "$tmp/lli.json" 'sum(p["preload"]["exec"] + p["preload"]["areas"] for p in d)')
	echo "# lli: $later RW mappings made RX later; $served served"
	check "lli: its code was mapped RW and made RX later ($later), and left to the kernel ($served served)" \
		'[ "$later" -ge 1 ] && [ "$served" = 0 ]'
else
	skip 2 "lli is not installed (apt-get install llvm-runtime)"
fi

# --- the command's own contract ---------------------------------------------
"$tool" run -- sh -c 'exit 3'
check "hugeperm run passes the exit status on (3)" '[ $? -eq 3 ]'
"$tool" run -- /nonexistent/program 2> "$tmp/err"
rc=$?
check "hugeperm run of a missing program: 127 and the errno named" \
	'[ $rc -eq 127 ] && grep -q "ENOENT" "$tmp/err"'
"$tool" run --flip sideways -- true 2> "$tmp/err"
rc=$?
check "hugeperm run --flip sideways: 2, EINVAL, nothing run" '[ $rc -eq 2 ] && grep -q EINVAL "$tmp/err"'
