# tap.sh - the TAP helpers of the tests/e2e scripts, sourced after srcdir is
# set: a counter, pass/fail/skip/check, and a scratch directory $tmp that
# goes when the script ends.
n=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; }
skip() { i=0; while [ $i -lt "$1" ]; do n=$((n + 1)); echo "ok $n # SKIP $2"; i=$((i + 1)); done; }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
