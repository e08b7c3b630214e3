#!/bin/sh
# Run every cargo-fuzz target of fuzz/ for SECONDS each (default 60), from
# the seeds in fuzz/corpus/<target>/ plus what earlier runs found there.
#   sh scripts/fuzz.sh            # a minute per target
#   sh scripts/fuzz.sh 5          # the CI smoke (scripts/test.sh)
#   sh scripts/fuzz.sh 600 guard_stamp
# Needs the nightly toolchain (sanitizers); installs cargo-fuzz from
# crates.io when missing. A crash leaves its input in fuzz/artifacts/<target>/
# and fails the script: turn it into a regression test in tests/formats.rs.
set -eu
cd "$(dirname "$0")/../fuzz"
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"
secs="${1:-60}"
shift 2>/dev/null || true
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: no nightly toolchain; skipped (tests/formats.rs replays inputs on stable)" >&2
    exit 0
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
targets="${*:-$(cargo +nightly fuzz list)}"
cargo +nightly fuzz build -O
for t in $targets; do
    mkdir -p "corpus/$t"
    printf 'fuzz %s (%ss): ' "$t" "$secs"
    cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" 2>fuzz-$t.log \
        || { tail -40 "fuzz-$t.log"; exit 1; }
    grep -o 'Done [0-9]* runs' "fuzz-$t.log"
    rm -f "fuzz-$t.log"
done
