#!/bin/sh
# Build the Rust parts for meson, then copy what meson links and installs
# into meson's output directory (only when changed, so that an up-to-date
# cargo build does not make ninja relink everything downstream).
#
#   cargo-build.sh CARGO SRCDIR TARGET_DIR PROFILE OFFLINE OUTDIR [BIN...]
#
# CARGO       the cargo program
# SRCDIR      the source tree (the workspace's Cargo.toml is there)
# TARGET_DIR  cargo's --target-dir
# PROFILE     cargo profile: release, dev, or one defined in Cargo.toml
# OFFLINE     true: cargo --offline (crates from ~/.cargo or a vendor dir)
# OUTDIR      where meson expects the outputs
# BIN...      what to build and copy besides libstagehand_capi.a
#             (stagehand: the CLI; stagehand-testbed: the test runner;
#             stagehand-cxx: the C++ binding, see below)
#
# For stagehand-cxx, OUTDIR gets libstagehand-cxx-1.a (the crate's static
# library), bridge.h (the header cxx-build generated) and cxx.h (cxx's
# runtime header), which meson installs, and stagehand-cxx-include/, the
# same headers laid out as C++ code includes them (stagehand-cxx/*.h,
# rust/cxx.h), for programs compiled in the build tree. The crate's build
# script puts them in its OUT_DIR; cargo's JSON messages say where that is.
#
# Cargo always runs with --locked: the lock file names every crate.
set -eu
cargo=$1 src=$2 target=$3 profile=$4 offline=$5 out=$6
shift 6

pkgs="-p stagehand-capi"
for bin in "$@"; do
    case $bin in
        stagehand) pkgs="$pkgs -p stagehand-cli" ;;
        stagehand-testbed) pkgs="$pkgs -p stagehand-testbed" ;;
        stagehand-cxx) pkgs="$pkgs -p stagehand-cxx" ;;
        *) echo "cargo-build.sh: unknown binary $bin" >&2; exit 1 ;;
    esac
done
flags="--locked"
[ "$offline" = true ] && flags="$flags --offline"

# Run from the source tree, so that its .cargo/config.toml (the vendoring
# recipe in docs/packaging.md writes one) applies wherever the build dir is.
out=$(cd "$out" && pwd)
case $target in /*) ;; *) target=$(pwd)/$target ;; esac
cd "$src"

messages=$out/cargo-messages.json
# shellcheck disable=SC2086 # word splitting of $flags and $pkgs is intended
"$cargo" build $flags --manifest-path "$src/Cargo.toml" --target-dir "$target" \
    --profile "$profile" --message-format=json-render-diagnostics $pkgs > "$messages"

case $profile in
    dev|test) dir=$target/debug ;;
    bench) dir=$target/release ;;
    *) dir=$target/$profile ;;
esac

copy() {
    if ! cmp -s "$1" "$2"; then
        # A hard link when cargo's target dir is on the same file system
        # (the static library is large in dev builds), else a copy.
        ln -f "$1" "$2.tmp" 2>/dev/null || cp -f "$1" "$2.tmp"
        mv -f "$2.tmp" "$2"
    fi
}
copy "$dir/libstagehand_capi.a" "$out/libstagehand_capi.a"
for bin in "$@"; do
    case $bin in
        stagehand-cxx)
            # The build script's OUT_DIR, reported even when nothing was rebuilt.
            inc=$(grep '"reason":"build-script-executed"' "$messages" |
                grep '#stagehand-cxx@' | sed -n 's/.*"out_dir":"\([^"]*\)".*/\1/p' | tail -n 1)/include
            [ -f "$inc/stagehand-cxx/bridge.h" ] ||
                { echo "cargo-build.sh: no C++ headers in $inc" >&2; exit 1; }
            copy "$dir/libstagehand_cxx.a" "$out/libstagehand-cxx-1.a"
            copy "$inc/stagehand-cxx/bridge.h" "$out/bridge.h"
            copy "$inc/rust/cxx.h" "$out/cxx.h"
            mkdir -p "$out/stagehand-cxx-include/stagehand-cxx" "$out/stagehand-cxx-include/rust"
            for h in stagehand-cxx/bridge.h stagehand-cxx/stagehand.hpp rust/cxx.h; do
                copy "$inc/$h" "$out/stagehand-cxx-include/$h"
            done
            ;;
        *) copy "$dir/$bin" "$out/$bin" ;;
    esac
done
