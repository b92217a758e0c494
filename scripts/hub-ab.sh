#!/usr/bin/env bash
# A/B of two hub binaries under the same load: runs A and B alternately
# (A B A B ...) at one shape and prints each run's delivered rate,
# p50/p99/p99.9 and the hub's CPU time per delivered message (user +
# system, from /proc while the load runs), then the medians of B/A. Alternating in one run is what
# makes a ratio worth quoting on a noisy 2-core machine.
#
#   scripts/hub-ab.sh HUB_A HUB_B [N] [RATE] [DURATION] [ROUNDS]
#     HUB_A, HUB_B  nax-hub binaries (e.g. a worktree's
#                   target/production/nax-hub, and this tree's)
#     N         clients (default 1000)
#     RATE      book.BTC-USD messages/s per client (default 100; the hub
#               runs --events-per-sec 4*RATE since book.BTC-USD gets 1/4)
#     DURATION  seconds of each loadtest run (default 15)
#     ROUNDS    A/B pairs (default 2)
#
# Only 127.0.0.1 (port 18282). Uses this tree's production `loadtest`,
# or LT_A and LT_B (two `loadtest` binaries: A's runs use LT_A, B's
# LT_B), so that the same script compares two clients against one hub.
# Also prints the client's CPU per delivered message (its user + system
# time, read from /proc every 0.2 s until it exits).
# Reports land in $OUT (default /tmp/hub-ab).
set -euo pipefail

A=${1:?HUB_A}
B=${2:?HUB_B}
N=${3:-1000}
RATE=${4:-100}
DUR=${5:-15}
ROUNDS=${6:-2}
RAMP=${RAMP:-2000}
OUT=${OUT:-/tmp/hub-ab}
PORT=18282
ROOT=$(cd "$(dirname "$0")/.." && pwd)

if (( N > 10000 || N < 1 )); then echo "N must be 1..10000" >&2; exit 1; fi
if (( DUR > 120 || DUR < 5 )); then echo "DURATION must be 5..120" >&2; exit 1; fi
if (( ROUNDS > 10 || ROUNDS < 1 )); then echo "ROUNDS must be 1..10" >&2; exit 1; fi
(cd "$ROOT" && cargo build --profile production -q -p loadtest)
LT_A=${LT_A:-$ROOT/target/production/loadtest}
LT_B=${LT_B:-$ROOT/target/production/loadtest}

rm -rf "$OUT"; mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/hub-ab.XXXXXX)
HUB_PID=""
cleanup() {
    [ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null || true
    sleep 1; rm -rf "$TMP"
}
trap cleanup EXIT
ulimit -n 20000

# utime + stime of a process, in clock ticks (proc(5)).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # label binary round loadtest
    local label=$1 bin=$2 round=$3 loadtest=$4
    rm -rf "$TMP/data"
    "$bin" --port $PORT --events-per-sec $(( 4 * RATE )) --max-connections $(( N + 100 )) \
        --max-connections-per-ip $(( N + 100 )) --data-dir "$TMP/data" >"$TMP/hub.log" 2>&1 &
    HUB_PID=$!
    sleep 2
    echo "== $label round $round: $N clients, ~$RATE msgs/s each"
    local before; before=$(cpu_ticks "$HUB_PID")
    "$loadtest" --url ws://127.0.0.1:$PORT/ws -n "$N" -d "$DUR" --ramp "$RAMP" \
        --channels book.BTC-USD --no-progress --out "$OUT/$label$round" >"$OUT/$label$round.txt" &
    local lt=$! lt_ticks=0 t
    while t=$(cpu_ticks "$lt" 2>/dev/null); do lt_ticks=$t; sleep 0.2; done
    wait "$lt" || true
    echo $(( $(cpu_ticks "$HUB_PID") - before )) >"$OUT/$label$round.cpu_ticks"
    echo "$lt_ticks" >"$OUT/$label$round.client_ticks"
    kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null || true; HUB_PID=""
}

for r in $(seq "$ROUNDS"); do
    run A "$A" "$r" "$LT_A"
    run B "$B" "$r" "$LT_B"
done

python3 - "$OUT" "$ROUNDS" "$(getconf CLK_TCK)" <<'EOF'
import json, statistics, sys
out, rounds, tick = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(label, r):
    d = json.load(open(f"{out}/{label}{r}/result.json"))
    lat = d["latency_us"]["live"]
    ticks = int(open(f"{out}/{label}{r}.cpu_ticks").read())
    msgs = max(d["throughput"]["messages"], 1)
    cpu_us = ticks / tick * 1e6 / msgs
    client = int(open(f"{out}/{label}{r}.client_ticks").read()) / tick * 1e6 / msgs
    return d["throughput"]["msgs_per_s"], lat["p50"], lat["p99"], lat["p999"], cpu_us, client, d["integrity_ok"]
rows = {l: [load(l, r) for r in range(1, rounds + 1)] for l in "AB"}
print(f"{'run':<6}{'msgs/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'p99.9 ms':>10}{'CPU us/msg':>12}{'client us/msg':>15}  integrity")
for l in "AB":
    for r, (rate, p50, p99, p999, cpu, client, ok) in enumerate(rows[l], 1):
        print(f"{l}{r:<5}{rate:>12.0f}{p50/1e3:>10.2f}{p99/1e3:>10.2f}{p999/1e3:>10.2f}{cpu:>12.2f}{client:>15.2f}  {'OK' if ok else 'FAILED'}")
for i, name in enumerate(["msgs/s", "p50", "p99", "p99.9", "CPU per message", "client CPU per message"]):
    ratio = statistics.median(b[i] / a[i] for a, b in zip(rows["A"], rows["B"]))
    print(f"B/A {name}: {ratio:.2f}x (median of {rounds} pairs)")
EOF
