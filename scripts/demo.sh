#!/bin/sh
# Install what is missing, build stagehand, and run its demo: a full update
# cycle on a throwaway sysroot, printed step by step. Run as root.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"
cargo build -q --locked -p stagehand-cli
exec ./target/debug/stagehand demo "$@"
