#!/bin/sh
# The crash sweep: every state-changing stagehand operation killed at each of
# its crash points on a booted test sysroot (docs/reliability.md). Prints the
# table operation / crash points / tried / violations; exits 1 on a violation.
#
#   sh scripts/crashsweep.sh                  # the full sweep (every point)
#   sh scripts/crashsweep.sh --points 3       # 3 spaced + 3 commit points each
#   sh scripts/crashsweep.sh --ops stage,mark-good
#   sh scripts/crashsweep.sh --ops mark-bad+reboot   # a power cut, then the next boots
#   sh scripts/crashsweep.sh --list           # the operations and start states
#
# Needs root (the test bed builds sysroots and mount namespaces).
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet -p stagehand-cli -p stagehand-crashsweep
exec target/release/stagehand-crashsweep "$@"
