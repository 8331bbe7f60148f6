#!/usr/bin/env bash
# Runs DarkSwap's gossip layer in the libp2p gossipsub benchmark (libp2p/test-plans
# `gossipsub-interop`, pinned): the harness writes the scenario's Shadow configuration, network
# graph and params.json for `darkswap-gossipsub-interop` nodes, Shadow runs them, and the
# harness's own analysis prints delivery, latency and duplicate figures.
#
#   scripts/gossipsub-interop.sh [nodes] [scenario]      # defaults: 50 simple-fanout
#
# The harness and its Python packages come from scripts/setup-gossipsub-interop.sh. Output:
# target/gossipsub-interop/<scenario>-<nodes>/ (the Shadow files, each node's log in
# shadow.data/hosts/, the harness's analysis and plots in shadow.data/plots/).
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${1:-50}
SCENARIO=${2:-simple-fanout}
SHADOW="${DARKSWAP_SHADOW:-$(bash scripts/setup-shadow.sh)}"
HARNESS=$(bash scripts/setup-gossipsub-interop.sh)
VENV="${DARKSWAP_TOOLS:-$HOME/.cache/darkswap-tools}/gossipsub-interop-venv"

# The binary: given (the lab's test passes the one Cargo built for it), or built here.
BIN="${DARKSWAP_INTEROP_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --quiet -p darkswap-lab --bin darkswap-gossipsub-interop
  BIN="$(pwd)/target/debug/darkswap-gossipsub-interop"
fi
OUT="${DARKSWAP_INTEROP_OUT:-$(pwd)/target/gossipsub-interop}/$SCENARIO-$NODES"
rm -rf "$OUT" && mkdir -p "$OUT"

# The harness's own functions write the run's files, as its run.py does (run.py itself needs
# Python 3.12; Debian has 3.11, and run.py would also build the other languages' binaries).
cd "$OUT"
"$VENV/bin/python" - "$HARNESS" "$BIN" "$NODES" "$SCENARIO" <<'PY'
import json, os, random, sys
from dataclasses import asdict
harness, binary, nodes, scenario = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, harness)
import experiment
from network_graph import generate_graph
# generate_graph reads shadow.template.yaml from the working directory.
os.symlink(os.path.join(harness, "shadow.template.yaml"), "shadow.template.yaml")
random.seed(1)
params = experiment.scenario(scenario, nodes, False)
d = asdict(params)
d["script"] = [i.model_dump(exclude_none=True) for i in params.script]
with open("params.json", "w") as f:
    json.dump(d, f)
generate_graph([binary] * nodes, "graph.gml", "shadow.yaml", params_file_location=os.path.abspath("params.json"))
PY
"$SHADOW" --progress false -d shadow.data shadow.yaml > shadow.log 2>&1 || {
  tail -20 shadow.log >&2
  exit 1
}
cp shadow.yaml graph.gml params.json shadow.data/
"$VENV/bin/python" - "$HARNESS" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from analyze_message_deliveries import analyse_message_deliveries
analyse_message_deliveries("shadow.data", "shadow.data/plots", 4)
PY
cat shadow.data/plots/analysis*.txt
