#!/usr/bin/env bash
# Installs what the browser tests need, if missing: Debian's Chromium, Node.js, and the pinned
# playwright-core (which drives Chromium; it downloads no browser of its own). Needs root for apt.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v unshare >/dev/null || missing+=(util-linux)
command -v ip >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-browser: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
want=$(sed -n 's/.*"playwright-core": "\([^"]*\)".*/\1/p' web/tests/package.json)
have=$(sed -n 's/.*"version": "\([^"]*\)".*/\1/p' web/tests/node_modules/playwright-core/package.json 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  (cd web/tests && npm install --no-audit --no-fund --loglevel=error)
fi
