#!/bin/sh
# check-install.sh BUILDDIR SRCDIR PREFIX LIBDIR INCLUDEDIR BINDIR UNITDIR
#
# `meson install` into a DESTDIR puts everything where distributions expect
# it, and programs built only from `pkg-config --cflags --libs stagehand-1`
# against that install link to it and run: every example (built; the
# update-daemon one run) and the C API test suite.
set -eu
builddir=$1 srcdir=$2 prefix=$3 libdir=$4 includedir=$5 bindir=$6 unitdir=$7
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
fail() { echo "FAIL: $*" >&2; exit 1; }

meson install -C "$builddir" --no-rebuild --quiet --destdir "$dest" > "$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "meson install"; }

case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
case $includedir in /*) ;; *) includedir=$prefix/$includedir ;; esac
case $bindir in /*) ;; *) bindir=$prefix/$bindir ;; esac
L=$dest$libdir

# The library, by its SONAME, exporting exactly the header's functions.
[ -f "$L/libstagehand-1.so.0" ] || fail "no $libdir/libstagehand-1.so.0"
[ -L "$L/libstagehand-1.so" ] || fail "no $libdir/libstagehand-1.so development link"
sh "$srcdir/tests/meson/check-exports.sh" "$L/libstagehand-1.so.0" "$srcdir/include/stagehand.h"

# The header, identical to the committed one.
cmp "$dest$includedir/stagehand-1/stagehand.h" "$srcdir/include/stagehand.h" ||
    fail "installed header differs from include/stagehand.h"

# The CLI.
[ -x "$dest$bindir/stagehand" ] || fail "no $bindir/stagehand"
"$dest$bindir/stagehand" --version | grep -q '^stagehand ' || fail "stagehand --version"

# Units: exactly the files under systemd/ (none yet is fine).
if [ -d "$srcdir/systemd" ]; then
    want=$(cd "$srcdir/systemd" && find . -path ./examples -prune -o -type f ! -name meson.build ! -name 'README*' ! -name '.*' -print | sed 's/\.in$//' | sort)
else
    want=
fi
if [ -d "$dest$unitdir" ]; then
    got=$(cd "$dest$unitdir" && find . -type f | sort)
else
    got=
fi
[ "$want" = "$got" ] || fail "units installed: [$got], expected: [$want]"

# The pkg-config file, relocated into the DESTDIR (only its prefix: the
# packages it requires stay where the system has them).
pc=$L/pkgconfig/stagehand-1.pc
[ -f "$pc" ] || fail "no stagehand-1.pc"
grep -q '^Requires: ostree-1, gio-2.0, glib-2.0$' "$pc" || fail "stagehand-1.pc Requires: $(grep Requires "$pc")"
mkdir "$tmp/pc"
sed "s|^prefix=.*|prefix=$dest$prefix|" "$pc" > "$tmp/pc/stagehand-1.pc"
export PKG_CONFIG_PATH="$tmp/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cflags=$(pkg-config --cflags stagehand-1)
libs=$(pkg-config --libs stagehand-1)
strict="-Wall -Wextra -Werror -Wconversion -Wmissing-prototypes -Waggregate-return -Wstrict-prototypes"

# Every C example builds as its "Build:" line says, from pkg-config alone.
for example in "$srcdir"/examples/c/*.c; do
    # shellcheck disable=SC2086
    $CC $strict -o "$tmp/$(basename "$example" .c)" "$example" $cflags $libs ||
        fail "example $example against the install"
done
# shellcheck disable=SC2086
$CC $strict -o "$tmp/test-api" "$srcdir/tests/c/test-api.c" $cflags $libs

# They load the installed library, not the build tree's.
export LD_LIBRARY_PATH="$L"
ldd "$tmp/test-api" | grep -q "libstagehand-1.so.0 => $L/libstagehand-1.so.0" ||
    { ldd "$tmp/test-api" >&2; fail "test-api does not load the installed library"; }

"$tmp/test-api" > "$tmp/test-api.log" 2>&1 || { cat "$tmp/test-api.log" >&2; fail "test-api against the install"; }
set +e
"$tmp/update-daemon" --sysroot "$tmp/no-such-sysroot" os/stable > "$tmp/daemon.log" 2>&1
rc=$?
set -e
[ $rc = 1 ] && grep -q "^error: .*no-such-sysroot" "$tmp/daemon.log" ||
    { cat "$tmp/daemon.log" >&2; fail "update-daemon example (exit $rc)"; }

# The C++ binding (when built: CXX is set): the static library, the three
# headers (stagehand.hpp as committed), stagehand-cxx-1.pc, and the C++
# example built only from `pkg-config --cflags --libs stagehand-cxx-1` with
# the flags C++ daemons use, then run: a typed error, reported by code.
if [ -n "${CXX:-}" ]; then
    inc=$dest$includedir/stagehand-cxx-1
    [ -f "$L/libstagehand-cxx-1.a" ] || fail "no $libdir/libstagehand-cxx-1.a"
    cmp "$inc/stagehand-cxx/stagehand.hpp" "$srcdir/bindings/cxx/include/stagehand-cxx/stagehand.hpp" ||
        fail "installed stagehand.hpp differs from bindings/cxx/include/stagehand-cxx/stagehand.hpp"
    grep -q 'namespace raw' "$inc/stagehand-cxx/bridge.h" || fail "no generated stagehand-cxx/bridge.h"
    grep -q 'CXXBRIDGE1_RUST_ERROR' "$inc/rust/cxx.h" || fail "no rust/cxx.h"
    cxxpc=$L/pkgconfig/stagehand-cxx-1.pc
    [ -f "$cxxpc" ] || fail "no stagehand-cxx-1.pc"
    grep -q '^Requires: ostree-1 gio-2.0 glib-2.0$' "$cxxpc" || fail "stagehand-cxx-1.pc Requires: $(grep Requires "$cxxpc")"
    sed "s|^prefix=.*|prefix=$dest$prefix|; s|^libdir=.*|libdir=$L|; s|^includedir=.*|includedir=$dest$includedir|" \
        "$cxxpc" > "$tmp/pc/stagehand-cxx-1.pc"
    for example in "$srcdir"/examples/cxx/*.cc; do
        # shellcheck disable=SC2086
        $CXX -std=c++17 -Wall -Wextra -Werror -o "$tmp/$(basename "$example" .cc)-cxx" \
            "$example" $(pkg-config --cflags --libs stagehand-cxx-1) ||
            fail "C++ example $example against the install"
    done
    set +e
    "$tmp/update-daemon-cxx" --sysroot "$tmp/no-such-sysroot" os/stable > "$tmp/daemon-cxx.log" 2>&1
    rc=$?
    set -e
    [ $rc = 1 ] && grep -q "^error: .*no-such-sysroot" "$tmp/daemon-cxx.log" ||
        { cat "$tmp/daemon-cxx.log" >&2; fail "C++ update-daemon example (exit $rc)"; }
    echo "C++ binding installed; a pkg-config consumer builds and runs"
fi

echo "installed: lib, header, pc, CLI, units; pkg-config consumers link and run"
