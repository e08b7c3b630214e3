#!/bin/sh
# The whole test suite: formatting, lints, every Rust test (real sysroots,
# booted test beds), and the consumer tests. Run as root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"
export CI="${CI:-true}"

step() { printf '\n### %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (unit, integration, booted test beds)"
cargo test --workspace --locked

step "all tests passed"
