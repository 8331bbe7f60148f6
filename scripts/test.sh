#!/usr/bin/env bash
# Runs every check and test of the workspace, installing what they need first:
#   formatting, clippy (warnings are errors), the browser (wasm32) build, then all tests
#   (unit, integration with real nodes on loopback, the CLI and demo, real NATs in network
#   namespaces, doc examples). Needs root: apt installs, and the NAT lab's namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== fmt"
cargo fmt --all --check

echo "== wasm32 build"
bash scripts/build-wasm.sh

echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tools for the NAT lab"
bash scripts/setup-nat.sh

echo "== tests"
cargo test --workspace --locked
