#!/usr/bin/env bash
# Runs every benchmark of the project and writes BENCHMARKS.md: each figure with its goal and
# the ratio against the peer or limit measured in the same run, plus the machine and the date.
# Full outputs stay in target/bench-logs/. Takes about half an hour on 2 cores.
#
#   ./scripts/bench.sh            # everything
#   ./scripts/bench.sh network    # some: network propagation goal bare signed capacity metrics flood relay aead webrtc browser lab
#   ./scripts/bench.sh --report   # only rewrite BENCHMARKS.md from the logs of earlier runs
set -euo pipefail
cd "$(dirname "$0")/.."

LOGS=target/bench-logs
mkdir -p "$LOGS"
ALL=(network propagation goal bare signed capacity metrics flood relay aead webrtc browser lab)
WANT=("${@:-${ALL[@]}}")
if [ "${1:-}" = "--report" ]; then
  WANT=()
fi

run() {
  local name=$1
  shift
  echo "== $name: $*"
  "$@" 2>&1 | tee "$LOGS/$name.log"
}

for b in ${WANT[@]+"${WANT[@]}"}; do
  case "$b" in
    network) bash scripts/setup-js-bench.sh && run network cargo bench -p darkswap-p2p --bench network -- --js ;;
    propagation) bash scripts/setup-js-bench.sh && run propagation cargo bench -p darkswap-p2p --bench propagation -- --js ;;
    goal) run goal cargo bench -p darkswap-p2p --bench propagation -- --nodes 50 --rate 200 --per-core --repeat 5 ;;
    bare) run bare cargo bench -p darkswap-p2p --bench propagation -- --only bare --nodes 50 --rate 200 --per-core --repeat 5 ;;
    signed) run signed cargo bench -p darkswap-p2p --bench propagation -- --only signed --nodes 50 --rate 200 --per-core --repeat 5 ;;
    capacity) run capacity cargo bench -p darkswap-p2p --bench propagation -- --capacity --nodes 50 --per-core ;;
    metrics) run metrics cargo bench -p darkswap-p2p --bench propagation -- --only metrics --nodes 10 --rounds 7 ;;
    flood) run flood cargo bench -p darkswap-p2p --bench propagation -- --only flood --nodes 10 --rate 100 ;;
    relay) run relay cargo bench -p darkswap-p2p --bench relay ;;
    aead) run aead cargo bench -p darkswap-p2p --bench aead ;;
    webrtc) run webrtc cargo bench -p darkswap-p2p --bench webrtc ;;
    browser) run browser bash scripts/test-browser.sh --bench 20 ;;
    lab) DARKSWAP_SHADOW=$(bash scripts/setup-shadow.sh) run lab cargo run --release -p darkswap-lab -- run propagation --nodes 100 ;;
    *) echo "unknown benchmark $b (one of: ${ALL[*]})" >&2; exit 2 ;;
  esac
done

ROWS=$(mktemp)
trap 'rm -f "$ROWS"' EXIT
for b in "${ALL[@]}"; do
  [ -f "$LOGS/$b.log" ] || continue
  grep '^BENCH |' "$LOGS/$b.log" | sed 's/^BENCH //; s/ *$//; s/|$/|/' | sed 's/^\(.*[^|]\)$/\1 |/' >> "$ROWS"
done

if [ -f BENCHMARKS.md ] && [ "${WANT[*]-}" != "${ALL[*]}" ]; then
  # A partial run (or --report) replaces the rows of the figures it has logs for and keeps the
  # others, so one benchmark rerun never wipes the rest of the table.
  awk -F'|' -v rows="$ROWS" -v date="$(date -u +%Y-%m-%d) ($(date -u +%H:%M) UTC)" '
    BEGIN { while ((getline line < rows) > 0) { split(line, f, "|"); fresh[f[2]] = line; order[++n] = f[2] } }
    /^Written by/ { print "Written by `./scripts/bench.sh`; rows last updated " date "."; next }
    /^\| / && ($2 in fresh) { print fresh[$2]; done[$2] = 1; next }
    { print }
    END { for (i = 1; i <= n; i++) if (!(order[i] in done)) print fresh[order[i]] }
  ' BENCHMARKS.md > BENCHMARKS.md.new
  mv BENCHMARKS.md.new BENCHMARKS.md
else
  {
    echo "# Benchmarks"
    echo
    echo "Written by \`./scripts/bench.sh\` on $(date -u +%Y-%m-%d) ($(date -u +%H:%M) UTC)."
    echo
    echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr); $(rustc --version)."
    echo
    echo "Each figure is measured next to its peer (plain rust-libp2p, js-libp2p, OpenSSL, a plain TCP stream) or"
    echo "against its limit in the same run; ratios above 1 are better for throughput, below 1 for"
    echo "latency, memory and time. Notes say how many runs and how noisy they were; full outputs are"
    echo "in \`target/bench-logs/\`."
    echo
    echo "| Figure | Value | Goal | Ratio | Runs, notes |"
    echo "|---|---|---|---|---|"
    cat "$ROWS"
  } > BENCHMARKS.md
fi
echo "wrote BENCHMARKS.md"
