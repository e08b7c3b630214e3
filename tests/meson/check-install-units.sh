#!/bin/sh
# check-install-units.sh INSTALL_UNITS_SCRIPT
#
# build-aux/install-units.sh installs every file of a unit directory (drop-in
# directories included) under DESTDIR, substitutes the directory variables,
# drops a template's .in suffix, and skips meson.build, README, hidden files
# and examples/.
set -eu
script=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/src/ostree-finalize-staged.service.d"
printf '[Service]\nExecStart=@bindir@/stagehand cleanup\nStateDirectory=@localstatedir@/lib/x\n' \
    > "$tmp/src/stagehand-cleanup.service"
printf '[Service]\nExecStop=@bindir@/stagehand stamp\n' \
    > "$tmp/src/ostree-finalize-staged.service.d/stagehand.conf"
printf '[Unit]\nDescription=@prefix@\n' > "$tmp/src/stagehand-tmpl.service.in"
mkdir -p "$tmp/src/examples"
echo "[Unit]" > "$tmp/src/examples/example.service"
echo "# not a unit" > "$tmp/src/meson.build"
echo "not a unit" > "$tmp/src/README.md"
echo "not a unit" > "$tmp/src/.hidden"

DESTDIR=$tmp/dest sh "$script" "$tmp/src" /usr/lib/systemd/system /usr /usr/bin \
    /usr/libexec /etc /var > /dev/null

u=$tmp/dest/usr/lib/systemd/system
found=$(cd "$u" && find . -type f | sort | tr '\n' ' ')
want="./ostree-finalize-staged.service.d/stagehand.conf ./stagehand-cleanup.service ./stagehand-tmpl.service "
if [ "$found" != "$want" ]; then
    echo "installed: $found" >&2
    echo "expected:  $want" >&2
    exit 1
fi
grep -qx 'ExecStart=/usr/bin/stagehand cleanup' "$u/stagehand-cleanup.service"
grep -qx 'StateDirectory=/var/lib/x' "$u/stagehand-cleanup.service"
grep -qx 'ExecStop=/usr/bin/stagehand stamp' "$u/ostree-finalize-staged.service.d/stagehand.conf"
if grep -rq '@' "$u"; then
    echo "unsubstituted variables left" >&2
    exit 1
fi
grep -qx 'Description=/usr' "$u/stagehand-tmpl.service"
[ "$(stat -c %a "$u/stagehand-cleanup.service")" = 644 ]
echo "units installed and substituted"
