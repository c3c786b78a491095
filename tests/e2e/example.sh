#!/bin/sh
# example.sh - the tiny JIT example, built against the *installed* library
# through pkg-config, as a user would: a staged install (DESTDIR) read
# through PKG_CONFIG_SYSROOT_DIR.
set -u
top_builddir=$(pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
echo "1..3"
if ${MAKE:-make} -s -C "$top_builddir" install DESTDIR="$stage/root" >"$stage/install.log" 2>&1; then
	echo "ok 1 - make install (staged)"
else
	echo "not ok 1 - make install (staged)"
	sed 's/^/# /' "$stage/install.log"
fi
pc=$(find "$stage/root" -name hugeperm.pc | head -n 1)
export PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_SYSROOT_DIR="$stage/root"
libdir=$(dirname "$(dirname "$pc")") # $libdir/pkgconfig/hugeperm.pc
# HP_LDFLAGS: -fsanitize=... when the library was built with sanitizers.
if cc ${HP_LDFLAGS:-} -o "$stage/tiny_jit" "$srcdir/examples/tiny_jit.c" $(pkg-config --cflags --libs hugeperm) \
	>"$stage/cc.log" 2>&1; then
	echo "ok 2 - tiny_jit builds with pkg-config --cflags --libs hugeperm"
else
	echo "not ok 2 - tiny_jit builds with pkg-config"
	sed 's/^/# /' "$stage/cc.log"
fi
out=$(LD_LIBRARY_PATH="$libdir" "$stage/tiny_jit" 2>&1)
echo "$out" | sed 's/^/# /'
case "$out" in
*"returned 42"*"coverage 100.0%"*) echo "ok 3 - the JIT-compiled function ran from huge-mapped hugeperm memory" ;;
*) echo "not ok 3 - the JIT-compiled function ran from huge-mapped hugeperm memory" ;;
esac
