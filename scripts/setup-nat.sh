#!/usr/bin/env bash
# Installs what the real-NAT tests need, if missing: iproute2 (ip netns, veth) and nftables
# (masquerading). Idempotent; needs root for apt.
set -euo pipefail
missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing+=(nftables)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup-nat: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
