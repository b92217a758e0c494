#!/usr/bin/env bash
# The hub's load acceptance runs (docs/BENCHMARKS.md, "Load tests"):
#   1. idle memory: 10k connections on `heartbeat`, RSS before and 60 s after
#   2. steady fan-out: 10k connections on book.BTC-USD, --events-per-sec 40
#   3. max rate at p99 <= 10 ms: fewer connections x higher rates
#   4. connect storm: 10k connections within 10 s
#   5. REST order flow: 40 users, 600 orders/s (or each of $ORDER_RATES)
#      for 20 s (a hub TOML raises the per-token rate limit [api]
#      requests_per_minute)
#   6. chart mix: N/5 connections, each on book + trades + ticker +
#      candles1m of one of two pairs (what a trading screen with a chart holds)
# Each step starts a fresh hub on 127.0.0.1:18282 and kills it afterwards.
# Only 127.0.0.1; every run bounded (<= 10k clients, <= 80 s).
#
#   scripts/load-bench.sh [N]      N clients for steps 1, 2, 4 (default 10000)
#   STEPS="5" scripts/load-bench.sh   only the listed steps (default 1 2 3 4 5 6)
# Reports land in $OUT (default /tmp/load-bench).
set -euo pipefail

N=${1:-10000}
STEPS=${STEPS:-1 2 3 4 5 6}
OUT=${OUT:-/tmp/load-bench}
PORT=18282
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/production
(( N >= 1 && N <= 10000 )) || { echo "N must be 1..10000" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || (cd "$ROOT" && cargo build --profile production -q -p hub -p loadtest)
rm -rf "$OUT"; mkdir -p "$OUT"
ulimit -n 20000
HUB_PID=""
trap '[ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null || true' EXIT

hub() { # EVENTS_PER_SEC
    "$BIN/nax-hub" --port $PORT --events-per-sec "$1" --max-connections 12000 --max-connections-per-ip 12000 \
        --data-dir "$OUT/data" >"$OUT/hub.log" 2>&1 &
    HUB_PID=$!
    sleep 2
}
stop() { kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null || true; HUB_PID=""; }
lt() { # NAME ARGS...
    local name=$1; shift
    "$BIN/loadtest" --url ws://127.0.0.1:$PORT/ws --no-progress --out "$OUT/$name" "$@" \
        >"$OUT/$name.txt" 2>&1 || true
    echo "== $name: $*"
    grep -E "connects|latency live|delivered|seq chain|checksums|integrity" "$OUT/$name.txt"
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$HUB_PID/status"; }
want() { [[ " $STEPS " == *" $1 "* ]]; }

# 1. idle memory
if want 1; then
hub 40
before=$(rss)
ramp=1000
"$BIN/loadtest" --url ws://127.0.0.1:$PORT/ws -n "$N" -d 80 --ramp $ramp --channels heartbeat \
    --no-progress --out "$OUT/idle" >"$OUT/idle.txt" 2>&1 &
LT=$!
sleep $(( N / ramp + 62 ))
after=$(rss)
wait "$LT" || true
stop
echo "== idle: RSS before ${before} kB, with $N connections after 60 s ${after} kB," \
     "$(( (after - before) * 1024 / N / 1024 )) KiB per connection (goal <= 20)"
fi

# 2. steady fan-out, 10 msgs/s/connection
if want 2; then
hub 40
lt steady -n "$N" -d 45 --ramp 1000 --channels book.BTC-USD
stop
fi

# 3. max delivered rate at p99 <= 10 ms: CONNS x book.BTC-USD msgs/s
want 3 && for step in "1000 100" "500 300" "250 1000" "250 1600" "250 2400"; do
    set -- $step
    hub $(( 4 * $2 ))
    lt "rate_${1}x$2" -n "$1" -d 20 --ramp 2000 --channels book.BTC-USD
    stop
done

# 4. connect storm
if want 4; then
hub 40
lt storm --scenario connect-storm -n "$N" -d 20 --storm-window 10 --channels book.BTC-USD
stop
fi

# 5. REST order flow: 40 users x 15 orders/s each (+ cancels: ~1350 requests
#    per user per minute, above the default limit of 600)
#    ORDER_RATES="600 2000 4000" runs one fresh hub per rate; the store's
#    group commit counters (batches per fsync) are printed after each.
if want 5; then
# The harness opens a connection per request in flight beyond its pool:
# up to 1,024, over the default of 64 per address.
printf '[api]\nrequests_per_minute = 60000\nrequest_burst = 1000\n[http]\nmax_connections_per_ip = 2048\n' \
    >"$OUT/orders-hub.toml"
for RATE in ${ORDER_RATES:-600}; do
"$BIN/nax-hub" --config "$OUT/orders-hub.toml" --port $PORT --data-dir "$OUT/orders-data-$RATE" \
    >"$OUT/hub-orders-$RATE.log" 2>&1 &
HUB_PID=$!
sleep 2
"$BIN/loadtest" --url ws://127.0.0.1:$PORT/ws --no-progress --out "$OUT/orders-$RATE" \
    --scenario orders --users 40 --rate "$RATE" -d 20 >"$OUT/orders-$RATE.txt" 2>&1 || true
echo "== orders: --users 40 --rate $RATE -d 20"
grep -E "users|rate  |POST /orders|DELETE|status classes|verdict" "$OUT/orders-$RATE.txt" || true
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E "^nax_store_(batches|syncs)_total" || true
stop
done
fi

# 6. chart mix: a trading screen's subscriptions (book, trades, ticker,
#    1m candles) on two pairs
if want 6; then
hub 40
lt chart -n $(( N / 5 )) -d 45 --ramp 1000 --channels chart:BTC-USD --channels chart:ETH-USD
stop
# the same without the candles, for what they add
hub 40
lt chart_without_candles -n $(( N / 5 )) -d 45 --ramp 1000 \
    --channels book.BTC-USD,trades.BTC-USD,ticker.BTC-USD --channels book.ETH-USD,trades.ETH-USD,ticker.ETH-USD
stop
fi
