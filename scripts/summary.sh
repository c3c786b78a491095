#!/bin/sh
# summary.sh DISTCHECK(pass|fail) LOG... - add up Automake test-suite.log
# summaries into the closing line "N passed, N failed, N skipped".
# distcheck counts as one more check.
dist=$1
shift
awk -v dist="$dist" '
	/^# PASS:/  { pass += $3 }
	/^# XFAIL:/ { pass += $3 }
	/^# SKIP:/  { skip += $3 }
	/^# FAIL:/  { fail += $3 }
	/^# XPASS:/ { fail += $3 }
	/^# ERROR:/ { fail += $3 }
	END {
		if (dist == "pass") pass++; else fail++
		if (pass + fail == 0) fail = 1
		printf "%d passed, %d failed, %d skipped\n", pass, fail, skip
	}' "$@"
