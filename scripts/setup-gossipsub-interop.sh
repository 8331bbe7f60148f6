#!/usr/bin/env bash
# Installs the libp2p gossipsub benchmark's harness (libp2p/test-plans `gossipsub-interop`, at a
# pinned commit) once, for scripts/gossipsub-interop.sh: from ../shared/vendor when it is beside
# the checkout, otherwise from its public repository at the same commit; and its Python packages
# (the versions its uv.lock pins) in a virtual environment. Both under ~/.cache/darkswap-tools.
# Prints the harness's directory.
set -euo pipefail
cd "$(dirname "$0")/.."

COMMIT=f4942573
TOOLS="${DARKSWAP_TOOLS:-$HOME/.cache/darkswap-tools}"
HARNESS="$TOOLS/test-plans-$COMMIT/gossipsub-interop"
VENV="$TOOLS/gossipsub-interop-venv"
VENDOR="${DARKSWAP_VENDOR:-$(pwd)/../shared/vendor}"

if [ ! -f "$HARNESS/run.py" ]; then
  mkdir -p "$TOOLS"
  if [ -f "$VENDOR/test-plans-$COMMIT-gossipsub-interop.tar.gz" ]; then
    tar xzf "$VENDOR/test-plans-$COMMIT-gossipsub-interop.tar.gz" -C "$TOOLS"
  else
    echo "gossipsub-interop: no vendored harness at $VENDOR; cloning its public repository" >&2
    rm -rf "$TOOLS/test-plans-$COMMIT"
    git clone --quiet https://github.com/libp2p/test-plans.git "$TOOLS/test-plans-$COMMIT"
    git -C "$TOOLS/test-plans-$COMMIT" checkout --quiet "$COMMIT"
  fi
fi
if [ ! -x "$VENV/bin/python" ]; then
  # Debian keeps venv's pip bootstrap in a package of its own.
  python3 -m venv "$VENV" 2>/dev/null || {
    rm -rf "$VENV"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    python3 -m venv "$VENV"
  }
  "$VENV/bin/pip" install --quiet matplotlib==3.10.1 networkx==3.4.2 pydantic==2.11.4 pyyaml==6.0.2
fi
echo "$HARNESS"
