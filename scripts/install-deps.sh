#!/bin/sh
# Install what stagehand needs to build, test and run its demo on Debian 12,
# skipping what is already there. Run as root.
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: run as root (it uses apt-get, and the tests build sysroots)" >&2
    exit 1
fi

# ostree-boot: ostree-finalize-staged.service, which the cleanup-stamp drop-in extends
# (the tests run and `systemd-analyze verify` it).
PKGS="ostree ostree-boot libostree-dev libglib2.0-dev pkg-config gcc g++ binutils bubblewrap grub-common grub-emu \
      util-linux strace valgrind meson ninja-build systemd e2fsprogs curl ca-certificates"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Rust: Debian 12's rustc is too old for the crates; use rustup's toolchain.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "installing the Rust toolchain with rustup"
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt >/dev/null
fi
echo "dependencies present"
