#!/usr/bin/env bash
# Installs what the wasm32 build needs, if missing: Debian's rustc-web (a Rust toolchain that can
# build std for wasm32-unknown-unknown) and the matching wasm-ld. Idempotent; needs root for apt.
set -euo pipefail

have_toolchain() {
  [ -x /usr/bin/rustc ] && /usr/bin/rustc -vV >/dev/null 2>&1 && [ -d /usr/lib/rustlib/src/rust/library ] \
    && ls /usr/lib/llvm-*/bin/wasm-ld >/dev/null 2>&1
}

if have_toolchain; then
  exit 0
fi
echo "setup-wasm: installing rustc-web, cargo-web, rust-web-src and lld" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
V=$(apt-cache policy rustc-web | awk '/Candidate:/{print $2}')
if [ -z "$V" ] || [ "$V" = "(none)" ]; then
  echo "setup-wasm: rustc-web is not available from apt" >&2
  exit 1
fi
apt-get install -y -qq --no-install-recommends "rustc-web=$V" "cargo-web=$V" "rust-web-src=$V" >/dev/null
LLVM=$(/usr/bin/rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
apt-get install -y -qq --no-install-recommends "lld-$LLVM" >/dev/null
have_toolchain
