#!/usr/bin/env bash
# Builds the browser package: darkswap-web for wasm32 (release, size-optimised), then wasm-bindgen
# into web/pkg/ (JavaScript glue, .wasm, TypeScript types). Installs the toolchain and a
# wasm-bindgen-cli matching Cargo.lock first if needed. Prints the wasm size, raw and gzipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-wasm.sh
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)
TOOLS="${DARKSWAP_TOOLS:-$HOME/.cache/darkswap-tools}"
WB="$TOOLS/wasm-bindgen-$WB_VERSION/bin/wasm-bindgen"
if ! [ -x "$WB" ] || ! "$WB" --version | grep -q "$WB_VERSION"; then
  echo "build-web: installing wasm-bindgen-cli $WB_VERSION into $TOOLS (once; several minutes)" >&2
  cargo install wasm-bindgen-cli --version "=$WB_VERSION" --locked --root "$TOOLS/wasm-bindgen-$WB_VERSION" >&2
fi
source scripts/wasm-env.sh
/usr/bin/cargo build --locked --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort \
  --profile wasm-release -p darkswap-web "$@"
WASM="$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/darkswap_web.wasm"
rm -rf web/pkg
"$WB" --target web --remove-name-section --remove-producers-section --out-dir web/pkg "$WASM"
RAW=$(stat -c %s web/pkg/darkswap_web_bg.wasm)
GZ=$(gzip -9 -c web/pkg/darkswap_web_bg.wasm | wc -c)
echo "wasm size: ${RAW} bytes raw, ${GZ} bytes gzipped (web/pkg/darkswap_web_bg.wasm)"
