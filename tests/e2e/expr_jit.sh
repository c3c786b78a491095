#!/bin/sh
# expr_jit.sh - the expression JIT example compiles and runs expressions,
# each checked against its own interpreter, and writes code only through
# hugeperm (no mprotect call at all).
set -u
jit=./examples/expr_jit
echo "1..6"
n=0
check() { # check DESCRIPTION EXPECTED-SUBSTRING EXPR X...
	n=$((n + 1))
	desc=$1 want=$2
	shift 2
	out=$("$jit" "$@" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/# /'
	case "$out" in
	*"$want"*) [ $rc -eq 0 ] && echo "ok $n - $desc" || echo "not ok $n - $desc (exit $rc)" ;;
	*) echo "not ok $n - $desc" ;;
	esac
}
check "(x+3)*(x-2)/2 at 1, 5, 10" "x=10: 52 " '(x+3)*(x-2)/2' 1 5 10
check "precedence and unary minus" "x=7: -43 " '-x*x+6' 7
check "nested parentheses" "x=2: 3 " '((((x))+1))' 2
check "no mprotect call: writes through the alias" "mprotect calls: 0" 'x*x*x' 3
check "packed code: each function a chunk, all freed" "packed code: 2 allocations, 2 frees, 0 bytes in use" 'x+1' 1 2
out=$("$jit" '1/(x-x)' 4 2>&1)
n=$((n + 1))
case "$out" in *"division by zero"*) echo "ok $n - division by zero is refused" ;; *) echo "not ok $n - division by zero is refused" ;; esac
