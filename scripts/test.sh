#!/usr/bin/env bash
# Runs every check and test of the workspace, installing what they need first:
#   formatting, clippy (warnings are errors), the browser (wasm32) package, then all tests
#   (unit, integration with real nodes on loopback, WebRTC through a real TURN server, the CLI
#   and demo, real NATs in network namespaces, doc examples) and the real-browser tests in
#   headless Chromium. Needs root: apt installs, and the namespaces of the NAT lab and the
#   browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== fmt"
cargo fmt --all --check

echo "== wasm32 build (the browser package)"
bash scripts/build-web.sh

echo "== dependency audit (RustSec advisories)"
bash scripts/audit.sh

echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tools for the NAT lab, Prometheus, TURN"
bash scripts/setup-nat.sh
bash scripts/setup-prometheus.sh
bash scripts/setup-turn.sh

echo "== tests"
cargo test --workspace --locked

echo "== browser tests (headless Chromium)"
DARKSWAP_SKIP_WEB_BUILD=1 bash scripts/test-browser.sh
