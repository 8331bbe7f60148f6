#!/usr/bin/env bash
# Installs Shadow, the discrete-event network simulator the lab runs real node processes in, once:
# built from a pinned commit and kept in ~/.cache/darkswap-tools/shadow-<commit> (outside the
# checkout). Sources come from ../shared/vendor when it is beside the checkout (Shadow and the two
# git dependencies its Cargo.lock names), otherwise from Shadow's public repository at the same
# commit. Prints the path of the `shadow` binary. Needs root for apt; about 8 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

COMMIT=f1b2cacf2bb01e33d554a764dec02ccf2dcc5fdd
SHORT=${COMMIT:0:8}
TOOLS="${DARKSWAP_TOOLS:-$HOME/.cache/darkswap-tools}"
PREFIX="$TOOLS/shadow-$SHORT"
BIN="$PREFIX/bin/shadow"
VENDOR="${DARKSWAP_VENDOR:-$(pwd)/../shared/vendor}"

if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi

echo "setup-shadow: building Shadow $SHORT into $PREFIX (once; about 8 minutes)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends cmake findutils libclang-dev libc-dbg libglib2.0-0 \
  libglib2.0-dev make netbase python3 python3-networkx xz-utils util-linux gcc g++ pkg-config git >&2

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -f "$VENDOR/shadow-$SHORT.tar.gz" ]; then
  echo "setup-shadow: sources from $VENDOR" >&2
  tar xzf "$VENDOR/shadow-$SHORT.tar.gz" -C "$WORK"
  SRC="$WORK/shadow-$SHORT"
  for dep in bytes vsprintf; do
    tar xzf "$VENDOR/shadow-$dep.git.tar.gz" -C "$WORK"
  done
  # Shadow's Cargo.lock names two git dependencies; point Cargo at the vendored bare
  # repositories through the environment only, so Shadow's sources stay as published.
  export CARGO_NET_GIT_FETCH_WITH_CLI=true GIT_CONFIG_COUNT=2 \
    GIT_CONFIG_KEY_0="url.file://$WORK/shadow-bytes.git.insteadOf" \
    GIT_CONFIG_VALUE_0=https://github.com/shadow/bytes \
    GIT_CONFIG_KEY_1="url.file://$WORK/shadow-vsprintf.git.insteadOf" \
    GIT_CONFIG_VALUE_1=https://github.com/shadow/vsprintf
else
  echo "setup-shadow: no vendored sources at $VENDOR; cloning Shadow's public repository" >&2
  SRC="$WORK/shadow"
  git clone --quiet https://github.com/shadow/shadow.git "$SRC" >&2
  git -C "$SRC" checkout --quiet "$COMMIT"
fi

cd "$SRC"
./setup build --clean --prefix "$PREFIX" >&2
./setup install >&2
"$BIN" --version >&2
echo "$BIN"
