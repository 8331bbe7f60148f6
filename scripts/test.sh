#!/usr/bin/env bash
# Runs every check and test of the workspace, installing what they need first:
#   formatting, clippy (warnings are errors), the browser (wasm32) package, then all tests
#   (unit, integration with real nodes on loopback, WebRTC through a real TURN server, the CLI
#   and demo, real NATs in network namespaces, the Shadow lab's small scenario, doc examples)
#   and the real-browser tests in headless Chromium. Needs root: apt installs, and the
#   namespaces of the NAT lab and the browser tests.
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

echo "== tools for the NAT lab, Prometheus, TURN, the Shadow lab, the gossipsub benchmark"
bash scripts/setup-nat.sh
bash scripts/setup-prometheus.sh
bash scripts/setup-turn.sh
# Built once (about 10 minutes) and cached outside the checkout; the lab's test reads the path.
DARKSWAP_SHADOW=$(bash scripts/setup-shadow.sh)
export DARKSWAP_SHADOW
# The libp2p gossipsub benchmark's harness and its Python packages (the contract test runs it).
bash scripts/setup-gossipsub-interop.sh >/dev/null

echo "== tests"
cargo test --workspace --locked

echo "== browser tests (headless Chromium)"
DARKSWAP_SKIP_WEB_BUILD=1 bash scripts/test-browser.sh
