#!/bin/sh
# all_reported.sh EXTENSIONS TEST... - the last step of `make check`: every
# test the suite lists must have run and reported.  Automake names a test's
# log and .trs after the test less its extension, so two tests of one stem
# (tests/sim.t and tests/sim.sh once) share one log: only one of them runs
# and the harness does not notice.  Fails, naming them, when two tests
# share a .trs, or a test left no .trs or one without a result.
# EXTENSIONS is $(TEST_EXTENSIONS); run in the build tree.
exts=$1
shift
for t in "$@"; do
	trs=$t.trs
	for e in $exts; do
		case $t in *"$e") trs=${t%"$e"}.trs ;; esac
	done
	echo "$trs $t"
done | awk '
	{ n[$1]++; tests[$1] = tests[$1] (n[$1] > 1 ? " and " : "") $2; order[NR] = $1 }
	END {
		bad = 0
		for (i = 1; i <= NR; i++) {
			trs = order[i]
			if (done[trs]++)
				continue
			if (n[trs] > 1) {
				printf "not run: %s share %s: only one of them ran\n", tests[trs], trs
				bad++
				continue
			}
			results = 0
			while ((getline line < trs) > 0)
				if (line ~ /^:test-result:/)
					results++
			close(trs)
			if (!results) {
				printf "not reported: %s (no result in %s)\n", tests[trs], trs
				bad++
			}
		}
		if (bad) {
			printf "FAIL: %d of the %d tests listed did not report\n", bad, NR
			exit 1
		}
		printf "all %d tests listed reported\n", NR
	}'
