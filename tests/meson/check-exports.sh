#!/bin/sh
# check-exports.sh LIBRARY HEADER
#
# The shared library exports exactly the functions the header declares:
# every dynamic symbol it defines is a stagehand_* function of the header,
# and every function of the header is exported. And its SONAME is
# libstagehand-1.so.0.
set -eu
lib=$1 header=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$lib" | awk '{ print $3 }' | sed 's/@.*//' | sort -u > "$tmp/exported"
# cbindgen writes each declaration as `type name(` at the start of a line.
sed -n 's/^[A-Za-z][^(]*[ *]\(stagehand_[a-z0-9_]*\)(.*/\1/p' "$header" | sort -u > "$tmp/declared"

status=0
if [ ! -s "$tmp/declared" ]; then
    echo "no function found in $header" >&2
    exit 1
fi
if grep -v '^stagehand_' "$tmp/exported" > "$tmp/foreign"; then
    echo "exported symbols outside the stagehand_ prefix:" >&2
    cat "$tmp/foreign" >&2
    status=1
fi
if ! diff -u "$tmp/declared" "$tmp/exported" > "$tmp/diff"; then
    echo "exports differ from the header (- declared only, + exported only):" >&2
    cat "$tmp/diff" >&2
    status=1
fi
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" != "libstagehand-1.so.0" ]; then
    echo "SONAME is '$soname', not libstagehand-1.so.0" >&2
    status=1
fi
[ $status = 0 ] && echo "$(wc -l < "$tmp/exported") stagehand_* functions exported, SONAME $soname"
exit $status
