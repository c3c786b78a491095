#!/bin/sh
# exports.sh - libhugeperm.so exports the hp_ API and nothing else: its
# defined dynamic symbols are exactly the HP_API declarations of
# hugeperm.h (nm -D), with no compiler-made symbol among them (GCC's
# target_clones exported hp_code_free.resolver; code_calls.c's ifuncs have
# static resolvers).  Neither it nor the preload carries libgcc's CPU
# model (__builtin_cpu_supports), whose constructor costs every process
# they are loaded into a dozen cpuid traps on a virtual machine
# (lib/cpu_avx2.h).
set -u
echo "1..4"
lib=.libs/libhugeperm.so
if ./libtool --config | grep -q '^build_libtool_libs=no'; then
	for i in 1 2 3 4; do echo "ok $i # SKIP configured without shared libraries"; done
	exit 0
fi
if [ ! -f "$lib" ] || ! command -v nm >/dev/null 2>&1; then
	for i in 1 2 3 4; do echo "not ok $i - no $lib or no nm (binutils)"; done
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Sanitizer builds add their runtimes' hooks; they are not ours.
nm -D --defined-only "$lib" | awk '{ print $NF }' |
	grep -v '^__\(asan\|odr_asan\|tsan\|ubsan\|sancov\|lsan\)' | sort -u >"$tmp/exported"
grep '^HP_API' "${srcdir:-..}/include/hugeperm.h" | grep -o 'hp_[a-z0-9_]*(' | tr -d '(' |
	sort -u >"$tmp/declared"
odd=$(grep -v '^hp_[a-z0-9_]*$' "$tmp/exported")
if [ -z "$odd" ]; then
	echo "ok 1 - every exported symbol is an hp_ name ($(wc -l <"$tmp/exported") of them)"
else
	echo "not ok 1 - exported, not an hp_ name:" $odd
fi
extra=$(comm -23 "$tmp/exported" "$tmp/declared")
missing=$(comm -13 "$tmp/exported" "$tmp/declared")
if [ -z "$extra" ]; then
	echo "ok 2 - nothing exported that hugeperm.h does not declare"
else
	echo "not ok 2 - exported, not declared HP_API:" $extra
fi
if [ -z "$missing" ] && [ -s "$tmp/declared" ]; then
	echo "ok 3 - every HP_API call of hugeperm.h is exported ($(wc -l <"$tmp/declared"))"
else
	echo "not ok 3 - declared HP_API, not exported:" $missing
fi
# The local symbols too (nm without -D): libgcc's CPU model is linked in
# statically, hidden.
model=$(for so in "$lib" .libs/libhugeperm-preload.so; do
	[ -f "$so" ] && nm "$so" | awk -v so="$so" '$NF ~ /^__cpu_(indicator_init|model)$/ { print so ": " $NF }'
done)
if [ -z "$model" ]; then
	echo "ok 4 - no libgcc CPU model (__cpu_indicator_init) in the library or the preload"
else
	echo "not ok 4 - libgcc's CPU model linked in, its constructor runs cpuid in every process:" $model
fi
