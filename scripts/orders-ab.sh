#!/usr/bin/env bash
# A/B of hub binaries on the REST order flow: runs each binary in turn
# (A B B A, ROUNDS times) with `loadtest --scenario orders` at one rate
# and prints, per run, the accepted rate, POST /orders latency, the
# hub's and the harness's cores (user + system from /proc over MEASURE s
# of the flow, 5 by default), the embedded store's batches and syncs per
# second over the same seconds (batches per sync is the mean group
# commit), and how many of the run's fills the hub recorded
# (`order.filled` events once the load generator is done and the count
# has stopped moving: a saturated hub's order sync catches up after the
# load) against the IOC orders whose POST answered `filled`
# (one that found no liquidity is cancelled instead; a user's resting buy
# filled by another's market sell adds one more, so the count can pass
# them). Alternating in one run is what makes a ratio
# worth quoting on a noisy 2-core machine. A binary may be the order
# flow's floor, `target/production/orders-floor` (loadtest/src/
# orders_floor/): it takes the same TOML and answers /health and the
# same /metrics names, so it runs as a hub does.
#
#   scripts/orders-ab.sh RATE DURATION ROUNDS HUB_A [HUB_B ...]
#     RATE      orders/s offered (40 users, half resting and cancelled)
#     DURATION  seconds of each run (default figures: 20)
#     ROUNDS    rounds of A B B A (1 = each binary twice)
#
# A fresh data directory per run, port 18383 on 127.0.0.1 only, the
# TOML of docs/BENCHMARKS.md "REST order flow" (per-token limit raised).
# Uses this tree's production `loadtest`. Reports land in $OUT (default
# /tmp/orders-ab).
set -euo pipefail

RATE=${1:?RATE}
DUR=${2:?DURATION}
ROUNDS=${3:?ROUNDS}
shift 3
[ $# -ge 1 ] || { echo "usage: $0 RATE DURATION ROUNDS HUB_A [HUB_B ...]" >&2; exit 2; }
# The CPU is read from 9 to 9 + MEASURE s after the start; setup takes
# ~3 s. A longer MEASURE averages more of this noisy machine's moments.
MEASURE=${MEASURE:-5}
[ "$DUR" -ge $((MEASURE + 10)) ] || { echo "DURATION must be at least MEASURE + 10 s" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LT=${LT:-$ROOT/target/production/loadtest}
OUT=${OUT:-/tmp/orders-ab}
PORT=18383
[ -x "$LT" ] || { echo "no $LT: cargo build --profile production -p loadtest" >&2; exit 2; }
mkdir -p "$OUT"

cores() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The embedded store's batches and syncs so far: "BATCHES SYNCS".
store_counts() {
  curl -s "http://127.0.0.1:$PORT/metrics" |
    awk '/^nax_store_batches_total / {b = $2} /^nax_store_syncs_total / {s = $2} END {print b + 0, s + 0}'
}

run() {
  local bin=$1 dir=$2
  rm -rf "$dir"; mkdir -p "$dir/data"
  cat > "$dir/hub.toml" <<TOML
port = $PORT
data_dir = "$dir/data"
[api]
requests_per_minute = 60000
request_burst = 1000
[http]
max_connections_per_ip = 2048
TOML
  "$bin" --config "$dir/hub.toml" > "$dir/hub.log" 2>&1 &
  local hub=$!
  trap "kill $hub 2> /dev/null || true" EXIT
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break
    sleep 0.2
  done
  "$LT" --url "ws://127.0.0.1:$PORT/ws" --no-progress --scenario orders \
    --users 40 --rate "$RATE" -d "$DUR" --out "$dir/run" > "$dir/loadtest.txt" 2>&1 &
  local lt=$!
  # Setup (40 users, KYC, deposits) takes ~3 s; measure MEASURE s of the flow.
  sleep 9
  local h0 l0 h1 l1 tick
  h0=$(cores $hub); l0=$(cores $lt); s0=$(store_counts)
  sleep "$MEASURE"
  h1=$(cores $hub); l1=$(cores $lt); s1=$(store_counts)
  tick=$(getconf CLK_TCK)
  wait $lt || true
  # A saturated hub's order sync may still hold a backlog: wait until
  # its count of fills stops moving (3 s unchanged, 30 s at most: a sync
  # retrying a busy store can pause for a second or so).
  local filled last=-1 still=0
  for _ in $(seq 30); do
    filled=$(curl -s "http://127.0.0.1:$PORT/metrics" |
      awk -F' ' '/^nax_domain_events_total\{type="order.filled"/ {print $2}')
    if [ "${filled:-0}" = "$last" ]; then
      still=$((still + 1))
      [ "$still" -ge 3 ] && break
    else
      still=0
    fi
    last=${filled:-0}
    sleep 1
  done
  kill $hub; wait $hub 2> /dev/null || true
  local accepted post ioc
  accepted=$(grep -oE 'accepted [0-9.]+/s avg' "$dir/loadtest.txt" | grep -oE '[0-9.]+' | head -1)
  post=$(grep -E 'POST /orders \(all\)' "$dir/loadtest.txt" | grep -oE 'p50 [0-9.]+ \| p90 [0-9.]+ \| p99 [0-9.]+ \| p99.9 [0-9.]+' || true)
  # The IOC orders that filled, as their POST answered: an IOC order that
  # found no liquidity is cancelled, not filled.
  ioc=$(grep -E 'accepted orders by state' "$dir/loadtest.txt" | grep -oE 'filled: [0-9]+' | grep -oE '[0-9]+' || echo 0)
  local batches syncs
  read -r batches syncs <<< "$(paste -d' ' <(echo "$s0") <(echo "$s1") | awk -v m="$MEASURE" '{print ($3 - $1) / m, ($4 - $2) / m}')"
  printf '%-40s accepted %8s/s  %s  hub %.2f cores  harness %.2f  store %s batches/s in %s syncs/s  fills recorded %s of %s\n' \
    "$(basename "$bin") ($(basename "$dir"))" "${accepted:-?}" "${post:-?}" \
    "$(echo "($h1 - $h0) / $tick / $MEASURE" | bc -l)" "$(echo "($l1 - $l0) / $tick / $MEASURE" | bc -l)" \
    "$batches" "$syncs" "${filled:-0}" "${ioc:-0}"
}

for round in $(seq "$ROUNDS"); do
  order=("$@")
  reversed=()
  for ((i = ${#order[@]} - 1; i >= 0; i--)); do reversed+=("${order[$i]}"); done
  n=0
  for bin in "${order[@]}" "${reversed[@]}"; do
    n=$((n + 1))
    run "$bin" "$OUT/r$round-$n"
  done
done
