#!/bin/sh
# The whole test suite: formatting, lints, every Rust test (real sysroots,
# booted test beds), and the meson build with the C tests. Run as root on
# Debian 12.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"
export CI="${CI:-true}"

step() { printf '\n### %s\n' "$*"; }

step "no merge conflict markers in tracked files"
if git rev-parse --git-dir >/dev/null 2>&1 &&
    git grep -nE '^(<<<<<<<|>>>>>>>) |^=======$' -- . ':!*.orig'; then
    echo "merge conflict markers above: resolve them" >&2
    exit 1
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build (every artifact: the C and C++ static libraries the consumer tests link)"
cargo build --workspace --locked

step "cargo test (unit, integration, booted test beds)"
cargo test --workspace --locked

step "fuzz smoke: every parser's cargo-fuzz target, 200000 inputs from a fixed seed (docs/reliability.md)"
sh scripts/fuzz.sh --smoke

step "meson: libstagehand-1, header, C++ binding, install, C and C++ tests (GTest/TAP, valgrind)"
# Reuses the dev build cargo test just made (same target dir and profile):
# only the C ABI's static library is compiled on top of it.
builddir=target/meson
if [ -f "$builddir/build.ninja" ]; then
    meson setup --reconfigure "$builddir" -Dcargo_profile=dev -Dcargo_target_dir="$PWD/target" >/dev/null
else
    meson setup "$builddir" -Dcargo_profile=dev -Dcargo_target_dir="$PWD/target" >/dev/null
fi
meson compile -C "$builddir"
meson test -C "$builddir" --print-errorlogs

step "all tests passed"
