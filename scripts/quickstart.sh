#!/bin/sh
# quickstart.sh - from a fresh Debian 12 checkout to a running demo or a
# full test run.  Run as root (it installs build dependencies with apt-get).
#
#   scripts/quickstart.sh demo    install deps, build, run the demo
#   scripts/quickstart.sh check   install deps, build, run the test suite:
#                                 plain build (with the benchmarks built and
#                                 smoke-tested), ASan+UBSan build, the
#                                 concurrency tests under TSan, distcheck;
#                                 ends with "N passed, N failed, N skipped"
#   scripts/quickstart.sh bench   install deps, build, make bench
set -eu
mode=${1:-demo}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)

deps="build-essential autoconf automake libtool autoconf-archive pkg-config liburcu-dev libnuma-dev
	g++ libbenchmark-dev libmimalloc-dev python3 strace luajit pcre2-utils openjdk-17-jdk-headless
	llvm-runtime llvm-14-dev nodejs
	erlang-base php-cli php8.2-opcache ruby mono-runtime mono-mcs
	pypy3 guile-3.0 qemu-user"
missing=""
for p in $deps; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "== installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq $missing >/dev/null
fi

echo "== configuring and building"
./autogen.sh >/dev/null 2>&1 || { ./autogen.sh; exit 1; }

build() { # build DIR CONFIGURE-ARGS...
	dir=$1
	shift
	mkdir -p "$dir"
	(cd "$dir" && "$top/configure" -q "$@" && make -s -j"$jobs") >"$top/$dir.build.log" 2>&1 ||
		{ cat "$top/$dir.build.log"; echo "build in $dir failed" >&2; exit 1; }
}

tsan_tests="tests/kernel/threads.t tests/kernel/stress.t tests/kernel/fork.t tests/kernel/cache.t tests/kernel/storm.t tests/kernel/owns.t tests/kernel/code.t tests/kernel/quiet.t"

case "$mode" in
demo)
	build build
	exec ./build/examples/demo
	;;
bench)
	build build --enable-bench
	cd build && exec make bench
	;;
check)
	build build --enable-bench
	build build-asan --enable-sanitizers
	build build-tsan --enable-sanitizers=thread
	status=0
	# Tests run one at a time: the kernel-truth tests compare system-wide
	# counters (/proc/vmstat) and must not overlap.
	echo "== make check (plain build)"
	(cd build && make -s check) || status=1
	echo "== make check (ASan + UBSan build)"
	(cd build-asan && ASAN_OPTIONS=detect_leaks=1 make -s check) || status=1
	echo "== make check (TSan build: the concurrency tests)"
	(cd build-tsan && HP_STRESS_OPS=1000 TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
		make -s check TESTS="$tsan_tests") || status=1
	echo "== make distcheck"
	if (cd build && make -s distcheck >distcheck.log 2>&1); then
		echo "distcheck: ok"
		dist=pass
	else
		tail -40 build/distcheck.log
		# distcheck's own test log, or CI's tail names no failing test.
		for log in build/hugeperm-*/_build/sub/test-suite.log; do
			[ -f "$log" ] && cat "$log"
		done
		grep '^FAIL:\|^ERROR:' build/distcheck.log || true
		echo "distcheck: FAILED"
		dist=fail
		status=1
	fi
	for d in build build-asan build-tsan; do
		[ -f $d/test-suite.log ] && grep -q '^FAIL\|^ERROR' $d/test-suite.log && cat $d/test-suite.log
	done
	# The failing checks once more, last, where a truncated log still shows them.
	grep -h '^FAIL:\|^ERROR:' build/test-suite.log build-asan/test-suite.log \
		build-tsan/test-suite.log build/distcheck.log 2>/dev/null || true
	sh scripts/summary.sh "$dist" build/test-suite.log build-asan/test-suite.log \
		build-tsan/test-suite.log
	exit $status
	;;
*)
	echo "usage: $0 demo|check|bench" >&2
	exit 2
	;;
esac
