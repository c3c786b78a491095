#!/bin/sh
# example.sh - the tiny JIT example, built against the *installed* library
# through pkg-config, as a user would.  Installs into a scratch prefix.
set -u
top_builddir=$(pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
echo "1..3"
if ${MAKE:-make} -s -C "$top_builddir" install prefix="$prefix" >"$prefix/install.log" 2>&1; then
	echo "ok 1 - make install into a scratch prefix"
else
	echo "not ok 1 - make install into a scratch prefix"; sed 's/^/# /' "$prefix/install.log"
fi
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
if cc -o "$prefix/tiny_jit" "$srcdir/examples/tiny_jit.c" $(pkg-config --cflags --libs hugeperm) \
	>"$prefix/cc.log" 2>&1; then
	echo "ok 2 - tiny_jit builds with pkg-config --cflags --libs hugeperm"
else
	echo "not ok 2 - tiny_jit builds with pkg-config"; sed 's/^/# /' "$prefix/cc.log"
fi
out=$(LD_LIBRARY_PATH="$prefix/lib" "$prefix/tiny_jit" 2>&1)
echo "$out" | sed 's/^/# /'
case "$out" in
*"returned 42"*) echo "ok 3 - the JIT-compiled function ran from hugeperm memory" ;;
*) echo "not ok 3 - the JIT-compiled function ran" ;;
esac
