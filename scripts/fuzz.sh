#!/bin/sh
# Run every cargo-fuzz target of fuzz/ from the seeds in fuzz/corpus/<target>/
# plus what earlier runs found there.
#   sh scripts/fuzz.sh            # exploration: a minute per target, random seed
#   sh scripts/fuzz.sh 600 guard_stamp
#   sh scripts/fuzz.sh --smoke    # CI (scripts/test.sh): 200000 inputs per
#                                 # target from a fixed seed, so a run is
#                                 # reproducible and a red CI is never luck
# Needs the nightly toolchain (sanitizers); installs cargo-fuzz from
# crates.io when missing. A crash leaves its input in fuzz/artifacts/<target>/
# and fails the script: turn it into a regression test in tests/formats.rs.
set -eu
cd "$(dirname "$0")/../fuzz"
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"
if [ "${1:-}" = "--smoke" ]; then
    budget="-runs=200000 -seed=1"
    label="200000 inputs, seed 1"
else
    budget="-max_total_time=${1:-60}"
    label="${1:-60}s"
fi
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
    printf 'fuzz %s (%s): ' "$t" "$label"
    # shellcheck disable=SC2086 # $budget is two libFuzzer flags
    cargo +nightly fuzz run -O "$t" "corpus/$t" -- $budget 2>fuzz-$t.log \
        || { tail -40 "fuzz-$t.log"; exit 1; }
    grep -o 'Done [0-9]* runs' "fuzz-$t.log"
    rm -f "fuzz-$t.log"
done
