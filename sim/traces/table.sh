#!/bin/sh
# table.sh - the policy tables of docs/sim.md, from the sample traces:
#   sh ../sim/traces/table.sh tools/hugeperm    (what `make sim-table` runs)
# The simulator is deterministic, so the output is the same on any machine;
# tests/e2e/sim_cmds.sh checks that docs/sim.md holds exactly this.
set -eu
tool=$1
dir=$(cd "$(dirname "$0")" && pwd)
for name in luajit pcre2 node synth; do
	if [ "$name" = synth ]; then
		"$tool" synth --seed 1 -o "${TMPDIR:-/tmp}/hp-synth.$$.hpt" 2> /dev/null
		trace=${TMPDIR:-/tmp}/hp-synth.$$.hpt
		about='`hugeperm synth --seed 1`: 2 threads, 2000 units of 1-16 pages in 16-page areas, one patch each'
	else
		trace=$dir/$name.hpt
		about='`sim/traces/'$name'.hpt`'
	fi
	echo "#### $name"
	echo
	"$tool" replay "$trace" --format json |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print("%s: %d events over %.0f ms." % (sys.argv[1], d["events"], d["span_ms"]))' "$about"
	echo
	"$tool" replay "$trace" --format markdown
	echo
	[ "$name" = synth ] && rm -f "$trace"
done
