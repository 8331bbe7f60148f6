#!/usr/bin/env bash
# Installs what the TURN tests need, if missing: Debian's coturn (`turnserver`). The tests start
# their own server on a free loopback port; nothing runs as a service. Needs root for apt.
set -euo pipefail
if command -v turnserver >/dev/null; then
  exit 0
fi
echo "setup-turn: installing coturn" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends coturn >/dev/null
# The package enables a system service; the tests need only the binary.
systemctl disable --now coturn >/dev/null 2>&1 || true
command -v turnserver >/dev/null
