# jit_held.sh - what the tests/e2e engine scripts share, sourced after
# tap.sh: an engine's anonymous executable memory by /proc/PID/smaps
# (jit_smaps), and running an engine held once it has compiled, while that
# is read (held).

# Anonymous executable memory of process $1, by /proc/PID/smaps: prints
# "HUGE_KB RSS_KB".
jit_smaps() {
	python3 - "$1" <<'PY'
import re, sys
rss = huge = 0; cur = False
for line in open("/proc/%s/smaps" % sys.argv[1]):
    m = re.match(r"^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ (\d+)\s*(.*)$", line)
    if m:
        name = m.group(3)
        cur = "x" in m.group(1) and m.group(2) == "0" and (name == "" or name.startswith("[anon:"))
    elif cur and line.startswith("Rss:"):
        rss += int(line.split()[1])
    elif cur and line.startswith("AnonHugePages:"):
        huge += int(line.split()[1])
print(huge, rss)
PY
}

# Run "$@" (a program that prints "pid P" and waits for a line on stdin)
# under the preload; read its smaps then (or $measure, with the pid and the
# numbers of its "yjit" line, until it says all is huge or $settle tenths of
# a second have gone: a block written page by page is collapsed once quiet);
# let it finish.  Output to $1; sets $huge and $rss.
held() {
	out=$1
	shift
	mkfifo "$out.in"
	"$@" < "$out.in" > "$out" 2>&1 &
	job=$!
	exec 3> "$out.in"
	i=0
	while ! grep -q '^pid [0-9]*$' "$out" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	pid=$(sed -n 's/^pid \([0-9]*\)$/\1/p' "$out" | head -1)
	i=0
	while :; do
		set -- $(${measure:-jit_smaps} "${pid:-0}" $(sed -n 's/^yjit //p' "$out") 2>/dev/null)
		huge=${1:-0} rss=${2:-0}
		[ "$huge" -lt "$rss" ] && [ $i -lt "${settle:-0}" ] || break
		sleep 0.1
		i=$((i + 1))
	done
	echo >&3
	exec 3>&-
	wait $job
}
