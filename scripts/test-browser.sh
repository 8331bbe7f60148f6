#!/usr/bin/env bash
# The real-browser tests: builds the wasm package and the node, then runs headless Chromium
# against the demo page inside a private network namespace (loopback plus one veth pair,
# so WebRTC has a host address and no packet leaves the machine). Needs root.
#   ./scripts/test-browser.sh [test name filter ...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-browser.sh
[ -f web/pkg/darkswap_web_bg.wasm ] && [ "${DARKSWAP_SKIP_WEB_BUILD:-}" = 1 ] || bash scripts/build-web.sh
cargo build --locked -p darkswap-node
export DARKSWAP_NODE_BIN="$PWD/target/debug/darkswap-node"
exec unshare --net -- bash -c '
  set -euo pipefail
  ip link set lo up
  ip link add dsweb0 type veth peer name dsweb1
  ip addr add 198.18.0.1/24 dev dsweb0
  ip link set dsweb1 up
  ip link set dsweb0 up
  ip route add default dev dsweb0
  exec node web/tests/browser.test.mjs "$@"
' browser-tests "$@"
