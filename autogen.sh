#!/bin/sh
# Generate configure and friends.  tap-driver.sh comes from the installed
# Automake (it is not added by --add-missing).
set -e
cd "$(dirname "$0")"
mkdir -p build-aux
autoreconf -fi
for d in /usr/share/automake-*; do
	[ -f "$d/tap-driver.sh" ] && cp "$d/tap-driver.sh" build-aux/ && break
done
test -f build-aux/tap-driver.sh || { echo "autogen.sh: tap-driver.sh not found (install automake)" >&2; exit 1; }
