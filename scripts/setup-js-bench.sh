#!/usr/bin/env bash
# Installs what the js-libp2p side of the propagation bench needs, if missing: npm (from apt),
# then the pinned packages of crates/darkswap-p2p/benches/js, which include the Node.js 22
# binary the bench runs on (js-libp2p 3 needs Node.js 22; Debian ships an older one).
set -euo pipefail
cd "$(dirname "$0")/../crates/darkswap-p2p/benches/js"
if ! command -v npm >/dev/null; then
  echo "setup-js-bench: installing nodejs npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# npm ci reinstalls from package-lock.json; skip it when the tree was installed from this lock.
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.installed-from 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.installed-from
fi
