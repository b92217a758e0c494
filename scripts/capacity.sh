#!/usr/bin/env bash
# Capacity at saturation (issue 18): for 250, 1,000 and 10,000 connections
# on one channel, the hub, nginx + nchan and the floor (loadtest's `floor`
# sender, 2 writer threads) are each offered a per-connection rate that
# doubles step by step until the step fails: live p99 over 50 ms, or
# delivered below 99 % of offered. The p99 is the steady state's: the
# highest of the 1 s p99s once every client is open (first and last
# second dropped), so a 10,000-connection ramp does not fail a step by
# itself; the whole run's p99, ramp included, is printed beside it. Prints every step and each one's
# largest passing rate (messages/s over all connections).
#
#   scripts/capacity.sh [DUR]     DUR: seconds per step (default 8, 5..60)
#
# Offered: nchan and the floor send exactly RATE messages/s per connection;
# the hub runs the sandbox at --events-per-sec 4*RATE and its offer is
# what it published on book.BTC-USD, read from the book's seq before and
# after the step (GET /markets/BTC-USD/orderbook). Delivered: the mean of
# loadtest's 1 s timeline once every client is open. The two windows
# differ (the seq's includes the ramp), so for the hub "delivered" is read
# from the chains instead: at most 1 % of messages missing (each gap or
# replacement snapshot counted as one), and the sandbox must have made at
# least 90 % of the rate. nchan and the floor are held to the same 1 %.
# 10,000 connections take 5 s to ramp: their steps last at least 15 s. Only 127.0.0.1; hub
# on 18282, nginx on 18380, the floor on 18480; everything it starts is
# stopped on exit; bounded: at most 6 steps per peer and size.
set -euo pipefail

DUR=${1:-8}
OUT=${OUT:-/tmp/capacity}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/production
HUB_PORT=18282; NGX_PORT=18380; FLOOR_PORT=18480
if (( DUR < 5 || DUR > 60 )); then echo "DUR must be 5..60" >&2; exit 1; fi

(cd "$ROOT" && cargo build --profile production -q -p hub -p loadtest)
# shellcheck source=lib/nchan.sh
. "$ROOT/scripts/lib/nchan.sh"
nchan_install

rm -rf "$OUT"; mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/capacity.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    nchan_stop "$TMP"
    sleep 1; rm -rf "$TMP"
}
trap cleanup EXIT
ulimit -n 20000

nchan_start "$TMP" $NGX_PORT

book_seq() {
    curl -s "http://127.0.0.1:$HUB_PORT/markets/BTC-USD/orderbook?depth=1" \
        | python3 -c "import json,sys; print(json.load(sys.stdin)['seq'])"
}

# step PEER N RATE: runs one step; prints "offered delivered p99_ms
# p99_all_ms verdict".
step() {
    local peer=$1 n=$2 rate=$3 dir="$OUT/$1-$2-$3" url args=() pid=""
    case $peer in
        hub)
            "$BIN/nax-hub" --port $HUB_PORT --events-per-sec $(( 4 * rate )) \
                --max-connections $(( n + 100 )) --max-connections-per-ip $(( n + 100 )) \
                --data-dir "$TMP/data-$n-$rate" >"$TMP/hub.log" 2>&1 &
            pid=$!; PIDS+=("$pid"); sleep 2
            url=ws://127.0.0.1:$HUB_PORT/ws ;;
        nchan)
            "$BIN/publish" --url "http://127.0.0.1:$NGX_PORT/pub" --rate "$rate" \
                --duration $(( DUR + 11 )) --bytes 176 >"$TMP/publish.log" 2>&1 &
            pid=$!; PIDS+=("$pid")
            url=ws://127.0.0.1:$NGX_PORT/sub; args=(--peer nchan --verify-fraction 0) ;;
        floor)
            "$BIN/floor" --port $FLOOR_PORT --threads 2 --rate "$rate" --bytes 176 \
                --duration $(( DUR + 11 )) >"$TMP/floor.log" 2>&1 &
            pid=$!; PIDS+=("$pid"); sleep 1
            url=ws://127.0.0.1:$FLOOR_PORT/; args=(--peer nchan --verify-fraction 0) ;;
    esac
    local seq0="" t0 t1
    [ "$peer" = hub ] && seq0=$(book_seq)
    t0=$(date +%s.%N)
    local dur=$DUR
    (( n >= 10000 && dur < 15 )) && dur=15
    "$BIN/loadtest" --url "$url" -n "$n" -d "$dur" --ramp 2000 --channels book.BTC-USD \
        --no-progress --out "$dir" "${args[@]}" >"$dir.txt" 2>&1 || true
    t1=$(date +%s.%N)
    local per_conn=$rate
    if [ "$peer" = hub ]; then
        per_conn=$(python3 -c "print(($(book_seq) - $seq0) / ($t1 - $t0))")
    fi
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    python3 - "$dir/result.json" "$peer" "$n" "$rate" "$per_conn" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); peer = sys.argv[2]
n, rate, per = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
tl = [p for p in r["timeline"] if p["open"] >= n][1:-1]
got = sum(p["msgs_per_s"] for p in tl) / len(tl) if tl else 0.0
p99_all = r["latency_us"]["live"]["p99"] / 1000
p99 = max(p["live_p99_us"] for p in tl) / 1000 if tl else p99_all
c = r["counters"]
# Missing messages, each gap or replacement snapshot counted as one.
missing = c["chain_failures"] + c["slow_consumer_snapshots"] + c["resync_snapshots"]
whole = c["connected"] == n and missing <= 0.01 * max(c["messages"], 1)
if peer == "hub":
    ok = whole and per >= 0.9 * rate
else:
    ok = whole and got >= 0.99 * n * per
ok = ok and p99 <= 50
print(f"{n * per:.0f} {got:.0f} {p99:.2f} {p99_all:.2f} {'pass' if ok else 'fail'}")
PY
}

declare -A RATES=([250]="200 400 800 1600 3200 6400" [1000]="50 100 200 400 800 1600" [10000]="5 10 20 40 80 160")
echo "peer conns rate/conn offered delivered p99_ms p99_all_ms verdict" | tee "$OUT/steps.txt"
for n in 250 1000 10000; do
    for peer in hub nchan floor; do
        best=0; saturated=no
        for rate in ${RATES[$n]}; do
            read -r offered got p99 p99_all ok < <(step "$peer" "$n" "$rate")
            echo "$peer $n $rate $offered $got $p99 $p99_all $ok" | tee -a "$OUT/steps.txt"
            [ "$ok" = pass ] || { saturated=yes; break; }
            best=$got
        done
        echo "$peer $n $best $saturated" >>"$OUT/max.txt"
    done
done

echo; echo "largest passing rate (msgs/s over all connections; 0: the first step failed; >=: no step failed):"
python3 - "$OUT/max.txt" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
best = {(p, int(n)): float(v) for p, n, v, _ in rows}
more = {(p, int(n)): s == "no" for p, n, _, s in rows}
print(f"{'conns':>6} {'hub':>10} {'nchan':>10} {'floor':>10} {'hub/nchan':>10} {'hub/floor':>10}")
for n in (250, 1000, 10000):
    h, x, f = best[("hub", n)], best[("nchan", n)], best[("floor", n)]
    ratio = lambda a, b: f"{a / b:.2f}x" if b else "-"
    cell = lambda p, v: ((">=" if more[(p, n)] else "") + f"{v:.0f}").rjust(10)
    print(f"{n:>6} {cell('hub', h)} {cell('nchan', x)} {cell('floor', f)} {ratio(h, x):>10} {ratio(h, f):>10}")
PY
