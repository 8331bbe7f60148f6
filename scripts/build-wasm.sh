#!/usr/bin/env bash
# Builds the darkswap-p2p library for wasm32-unknown-unknown (the browser build), with the `wasm`
# feature. Installs the toolchain first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-wasm.sh
source scripts/wasm-env.sh
/usr/bin/cargo build --locked --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort \
  -p darkswap-p2p --features wasm "$@"
echo "wasm32 build ok: darkswap-p2p"
