#!/usr/bin/env bash
# Peer comparison: the same N loadtest clients against the hub, against
# nginx + nchan and against the machine's floor (the `floor` sender of
# loadtest/src/floor.rs: one pre-framed write per connection per message,
# with 1 and with 2 writer threads), one after the other, at the same
# per-channel message rate and about the same payload size; prints the
# ratios hub/nchan, hub/floor and nchan/floor of delivered throughput and
# of p50/p99 latency (the floor: the better of its two runs by p99).
#
#   scripts/peer-bench.sh [N] [RATE] [DURATION]
#     N         clients (default 10000, at most 10000 here: fd limit)
#     RATE      book.BTC-USD messages/s (default 10; the hub runs
#               --events-per-sec 4*RATE since book.BTC-USD gets 1/4)
#     DURATION  seconds of each loadtest run, ramp included (default 20)
#
# Only 127.0.0.1. Hub on 18282, nginx on 18380, the floor on 18480. Installs nginx-light and
# libnginx-mod-nchan from Debian packages when missing. Everything it
# starts is stopped on exit. Reports land in $OUT (default
# /tmp/peer-bench): hub/ and nchan/ each with result.json and report.html.
set -euo pipefail

N=${1:-10000}
RATE=${2:-10}
DUR=${3:-20}
RAMP=${RAMP:-2000}
OUT=${OUT:-/tmp/peer-bench}
HUB_PORT=18282
NGX_PORT=18380
FLOOR_PORT=18480
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/production

if (( N > 10000 || N < 1 )); then echo "N must be 1..10000" >&2; exit 1; fi
if (( DUR > 120 || DUR < 5 )); then echo "DURATION must be 5..120" >&2; exit 1; fi

(cd "$ROOT" && cargo build --profile production -q -p hub -p loadtest)

# shellcheck source=lib/nchan.sh
. "$ROOT/scripts/lib/nchan.sh"
nchan_install

rm -rf "$OUT"; mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/peer-bench.XXXXXX)
HUB_PID=""; PUB_PID=""; FLOOR_PID=""
cleanup() {
    [ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null || true
    [ -n "$FLOOR_PID" ] && kill "$FLOOR_PID" 2>/dev/null || true
    [ -n "$PUB_PID" ] && kill "$PUB_PID" 2>/dev/null || true
    nchan_stop "$TMP"
    sleep 1; rm -rf "$TMP"
}
trap cleanup EXIT
ulimit -n 20000

# ---- 1. the hub --------------------------------------------------------
EVENTS=$(( 4 * RATE ))
echo "== hub: $N clients on book.BTC-USD, --events-per-sec $EVENTS (~$RATE msgs/s/client)"
"$BIN/nax-hub" --port $HUB_PORT --events-per-sec $EVENTS --max-connections $(( N + 100 )) --max-connections-per-ip $(( N + 100 )) \
    --data-dir "$TMP/data" >"$TMP/hub.log" 2>&1 &
HUB_PID=$!
sleep 2
"$BIN/loadtest" --url ws://127.0.0.1:$HUB_PORT/ws -n "$N" -d "$DUR" --ramp "$RAMP" \
    --channels book.BTC-USD --no-progress --out "$OUT/hub" | tee "$OUT/hub.txt" || true
kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null || true; HUB_PID=""

# Payload size of the hub's messages, to publish the same through nchan.
BYTES=$(python3 -c "import json;r=json.load(open('$OUT/hub/result.json'))['throughput'];print(int(r['bytes']/max(r['messages'],1)))")

# ---- 2. nginx + nchan --------------------------------------------------
nchan_start "$TMP" $NGX_PORT
sleep 1
echo "== nchan: $N clients on /sub, publishing $RATE msgs/s of ~$BYTES bytes"
"$BIN/publish" --url "http://127.0.0.1:$NGX_PORT/pub" --rate "$RATE" \
    --duration $(( DUR + 2 )) --bytes "$BYTES" >"$OUT/publish.txt" 2>&1 &
PUB_PID=$!
"$BIN/loadtest" --peer nchan --url ws://127.0.0.1:$NGX_PORT/sub -n "$N" -d "$DUR" \
    --ramp "$RAMP" --channels book.BTC-USD --verify-fraction 0 --no-progress \
    --out "$OUT/nchan" | tee "$OUT/nchan.txt" || true
wait "$PUB_PID" || true; PUB_PID=""
cat "$OUT/publish.txt"
nchan_stop "$TMP"

# ---- 3. the floor, 1 and 2 writer threads -------------------------------
for T in 1 2; do
    echo "== floor: $N clients, $T writer thread(s), $RATE msgs/s of ~$BYTES bytes"
    "$BIN/floor" --port $FLOOR_PORT --threads "$T" --rate "$RATE" --bytes "$BYTES" \
        --duration $(( DUR + 3 )) >"$OUT/floor$T.txt" 2>&1 &
    FLOOR_PID=$!
    sleep 1
    "$BIN/loadtest" --peer nchan --url ws://127.0.0.1:$FLOOR_PORT/ -n "$N" -d "$DUR" \
        --ramp "$RAMP" --channels book.BTC-USD --verify-fraction 0 --no-progress \
        --out "$OUT/floor$T" | tee "$OUT/floor$T.loadtest.txt" || true
    wait "$FLOOR_PID" || true; FLOOR_PID=""
    cat "$OUT/floor$T.txt"
done

# ---- 4. ratios ---------------------------------------------------------
python3 - "$OUT" "$N" <<'EOF'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
def load(name):
    r = json.load(open(f"{out}/{name}/result.json"))
    # steady state: seconds after every client is open, last point dropped
    tl = [p for p in r["timeline"] if p["open"] >= n][1:-1]
    steady = sum(p["msgs_per_s"] for p in tl) / len(tl) if tl else r["throughput"]["msgs_per_s"]
    lat = r["latency_us"]["live"]
    c = r["counters"]
    return dict(steady=steady, p50=lat["p50"] / 1000, p99=lat["p99"] / 1000,
                p999=lat["p999"] / 1000, chain_fail=c["chain_failures"],
                conn_fail=c["connect_failures"])
h, x, f1, f2 = load("hub"), load("nchan"), load("floor1"), load("floor2")
f = min((f1, f2), key=lambda v: v["p99"])
print(f"{'':8} {'steady msgs/s':>14} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'chain fail':>10} {'conn fail':>9}")
for name, v in (("hub", h), ("nchan", x), ("floor 1t", f1), ("floor 2t", f2)):
    print(f"{name:8} {v['steady']:14.0f} {v['p50']:8.2f} {v['p99']:8.2f} {v['p999']:9.2f} {v['chain_fail']:10d} {v['conn_fail']:9d}")
def ratio(name, a, b):
    print(f"{name}: throughput {a['steady']/b['steady']:.2f}x, "
          f"p50 {a['p50']/b['p50']:.2f}x, p99 {a['p99']/b['p99']:.2f}x")
ratio("hub/nchan  ", h, x)
ratio("hub/floor  ", h, f)
ratio("nchan/floor", x, f)
print("(latency ratios: < 1 means the first is faster; floor = the better of 1 and 2 threads by p99)")
EOF
