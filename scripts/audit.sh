#!/usr/bin/env bash
# Checks every locked dependency (the workspace and the fuzz workspace) against the RustSec
# advisory database: the snapshot in ../shared/advisory-db when it is there (offline), otherwise
# the public database, which cargo-audit fetches into ~/.cargo/advisory-db. Vulnerabilities
# fail; the findings this project accepts are listed below with the reason.
# Installs cargo-audit once (pinned) into ~/.cache/darkswap-tools.
set -euo pipefail
cd "$(dirname "$0")/.."

AUDIT_VERSION=0.22.2
TOOLS="${DARKSWAP_TOOLS:-$HOME/.cache/darkswap-tools}"
BIN="$TOOLS/cargo-audit-$AUDIT_VERSION/bin/cargo-audit"
if [ ! -x "$BIN" ]; then
  echo "audit: installing cargo-audit $AUDIT_VERSION into $TOOLS (once; several minutes)" >&2
  cargo install cargo-audit --version "=$AUDIT_VERSION" --locked --root "$TOOLS/cargo-audit-$AUDIT_VERSION" >&2
fi
DB="${DARKSWAP_ADVISORY_DB:-../shared/advisory-db}"
if [ -d "$DB/crates" ]; then
  SOURCE=(--db "$DB" --no-fetch)
  echo "audit: advisory database snapshot at $DB"
else
  SOURCE=()
  echo "audit: no snapshot at $DB; fetching the public RustSec advisory database"
fi
export PATH="$(dirname "$BIN"):$PATH"
# RUSTSEC-2024-0436: `paste` is unmaintained (no vulnerability); it is a proc-macro run at build
# time only, pulled in by netlink-packet-core <- if-watch <- libp2p's TCP/QUIC/mDNS.
for lock in Cargo.lock fuzz/Cargo.lock; do
  echo "audit: $lock"
  cargo audit ${SOURCE[@]+"${SOURCE[@]}"} --file "$lock" --deny warnings --ignore RUSTSEC-2024-0436
done
