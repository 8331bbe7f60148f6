#!/usr/bin/env bash
# Installs what the metrics tests need, if missing: Debian's Prometheus server and promtool.
# The tests start their own server on a free port; nothing runs as a service. Needs root for apt.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  exit 0
fi
echo "setup-prometheus: installing prometheus (server and promtool)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus >/dev/null && command -v promtool >/dev/null
