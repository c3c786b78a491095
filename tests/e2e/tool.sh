#!/bin/sh
# tool.sh - the hugeperm command: info against /sys, stats of a running
# process against its smaps, and clear errors (errno named, exit status 2).
set -u
tool=./tools/hugeperm
export HUGEPERM_PRELOAD_LIB=$(pwd)/.libs/libhugeperm-preload.so
n=0
echo "1..13"
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$tool" info > "$tmp/info" 2>&1
sed 's/^/# /' "$tmp/info"
check "info: THP mode as /sys says" \
	'grep -q "THP: enabled $(sed "s/.*\[\(.*\)\].*/\1/" /sys/kernel/mm/transparent_hugepage/enabled)" "$tmp/info"'
check "info: what hugeperm would use" 'grep -q "^hugeperm would use: backend " "$tmp/info"'
"$tool" info --json > "$tmp/info.json"
check "info --json: valid JSON with the 2 MiB pool as /sys says" \
	'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); p=[h for h in d[\"hugetlb\"] if h[\"page_kb\"]==2048]; sys.exit(0 if not p or p[0][\"total\"]==int(open(\"/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages\").read()) else 1)" "$tmp/info.json"'

case "${HP_LDFLAGS:-}" in *sanitize*) held=false ;; *) held=true ;; esac
if $held; then
	mkfifo "$tmp/in"
	"$tool" run -- ./tests/e2e/preload_ops hold < "$tmp/in" > "$tmp/hold" &
	exec 3> "$tmp/in"
	i=0
	while ! grep -q '^pid' "$tmp/hold" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	set -- $(sed -n 's/^pid \([0-9]*\) code \([0-9]*\) served \([0-9]\) resv \([0-9]*\) area \([0-9]*\)/\1 \2 \3 \4 \5/p' "$tmp/hold")
	pid=${1:-0} code=${2:-0} served=${3:-0} resv=${4:-0} area=${5:-0}
	"$tool" stats "$pid" > "$tmp/stats" 2>&1
	sed 's/^/# /' "$tmp/stats"
	"$tool" stats --json "$pid" > "$tmp/stats.json" 2>&1
	echo >&3
	exec 3>&-
	wait
	check "stats PID: the RWX class, all huge-mapped" 'grep -Eq "^  rwx .* 100.0%$" "$tmp/stats"'
	check "stats --json PID: the program's code address is in a listed rwx VMA" \
		'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); a=int(sys.argv[2]); sys.exit(0 if any(v[\"start\"]<=a<v[\"end\"] and v[\"perms\"]==\"rwxp\" and v[\"huge_kb\"]>0 for v in d[\"vmas\"]) else 1)" "$tmp/stats.json" "$code"'
	check "stats --json PID: a code range with a file mapped into it (V8's builtins) is found, its code huge" \
		'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); a=int(sys.argv[2]); sys.exit(0 if any(v[\"start\"]<=a<v[\"end\"] and v[\"perms\"]==\"rwxp\" and v[\"huge_kb\"]>0 for v in d[\"vmas\"]) else 1)" "$tmp/stats.json" "$resv"'
	check "stats --json PID: a JIT area hinted into the binary's own slot (a chunk in part of a slot) is found, RX, huge" \
		'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); a=int(sys.argv[2]); sys.exit(0 if a and any(v[\"start\"]<=a<v[\"end\"] and v[\"perms\"]==\"r-xp\" and v[\"huge_kb\"]>0 for v in d[\"vmas\"]) else 1)" "$tmp/stats.json" "$area"'
else
	n=$((n + 4))
	echo "ok $((n - 3)) # SKIP the preload is tested in the plain build"
	echo "ok $((n - 2)) # SKIP the preload is tested in the plain build"
	echo "ok $((n - 1)) # SKIP the preload is tested in the plain build"
	echo "ok $n # SKIP the preload is tested in the plain build"
fi
"$tool" stats $$ > "$tmp/none"
check "stats of a process without hugeperm memory says so" 'grep -q "(none" "$tmp/none"'
"$tool" stats 999999999 2> "$tmp/err"
rc=$?
check "stats of no such process: exit 2, ESRCH" '[ $rc -eq 2 ] && grep -q ESRCH "$tmp/err"'
"$tool" stats 12abc 2> "$tmp/err"
rc=$?
check "stats 12abc: exit 2, EINVAL" '[ $rc -eq 2 ] && grep -q EINVAL "$tmp/err"'
"$tool" frobnicate 2> "$tmp/err"
rc=$?
check "an unknown command: exit 2, EINVAL, usage" '[ $rc -eq 2 ] && grep -q EINVAL "$tmp/err" && grep -q usage "$tmp/err"'
"$tool" --help > "$tmp/help"
rc=$?
check "--help: exit 0, usage on stdout" '[ $rc -eq 0 ] && grep -q "hugeperm run" "$tmp/help"'
HUGEPERM_PRELOAD_LIB=/nonexistent.so "$tool" run -- true 2> "$tmp/err"
rc=$?
check "run without the preload library: exit 2, ENOENT named" '[ $rc -eq 2 ] && grep -q "ENOENT" "$tmp/err"'
