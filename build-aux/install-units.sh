#!/bin/sh
# Install every systemd unit and drop-in under SRCDIR into UNITDIR (under
# $DESTDIR when set), substituting @bindir@, @libexecdir@, @sysconfdir@,
# @localstatedir@ and @prefix@. meson runs this at `meson install`.
#
#   install-units.sh SRCDIR UNITDIR PREFIX BINDIR LIBEXECDIR SYSCONFDIR LOCALSTATEDIR
#
# Adding a unit is adding its file under systemd/ (a drop-in goes into its
# `NAME.service.d/` directory there): nothing to list anywhere. A template's
# `.in` suffix is dropped. Files named meson.build or README*, hidden files
# and the examples/ directory (documentation, not units) are not installed.
set -eu
src=$1 unitdir=$2 prefix=$3 bindir=$4 libexecdir=$5 sysconfdir=$6 localstatedir=$7
[ -d "$src" ] || exit 0
dest="${DESTDIR:-}$unitdir"

cd "$src"
find . -path ./examples -prune -o -type f ! -name 'meson.build' ! -name 'README*' ! -name '.*' -print | sort |
while read -r f; do
    f=${f#./}
    name=${f%.in}
    target="$dest/$name"
    mkdir -p "$(dirname "$target")"
    sed -e "s|@bindir@|$bindir|g" \
        -e "s|@libexecdir@|$libexecdir|g" \
        -e "s|@sysconfdir@|$sysconfdir|g" \
        -e "s|@localstatedir@|$localstatedir|g" \
        -e "s|@prefix@|$prefix|g" \
        "$f" > "$target.tmp"
    chmod 0644 "$target.tmp"
    mv -f "$target.tmp" "$target"
    echo "Installing systemd/$f to $unitdir/$name"
done
