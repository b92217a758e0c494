#!/usr/bin/env bash
# Capacity at saturation (issue 18): for 250, 1,000 and 10,000 connections
# on one channel, the hub, nginx + nchan and the floor (loadtest's `floor`
# sender, 2 writer threads) are each offered a per-connection rate that
# doubles step by step until the step fails: live p99 over P99_MS (50 ms), or
# delivered below 99 % of offered. The p99 is the steady state's: the
# highest of the 1 s p99s once every client is open (first and last
# second dropped), so a 10,000-connection ramp does not fail a step by
# itself; the whole run's p99, ramp included, is printed beside it. After
# the first failing step, two more steps bisect (geometrically) between
# it and the last passing one, so each maximum is known within 2^(1/4),
# about 19 %. A first step that fails is followed by up to three steps
# at half the rate before the last failing one, until one passes (a slow
# host), then the same two bisections. Each step also prints the CPU, in
# cores, of the server (the
# hub; nginx's processes and the publisher; the floor) and of the client
# (loadtest), over the steady part of the step, from /proc/PID/stat: it
# shows when the shared 2 cores, not the server, set the maximum. Prints
# every step and each one's largest passing rate (messages/s over all
# connections), then, for each connection count, the three peers' live
# p50/p99/p99.9 at a common rate and the ratios to the floor: the highest
# step that all three passed (else the first step,
# which all three ran), over the whole step, ramp included.
#
#   scripts/capacity.sh [DUR]     DUR: seconds per step (default 8, 5..60)
#
#   SIZES="250 1000 10000"  the connection counts to run (any of these)
#   P99_MS=50               the step's p99 bound: at 10,000 connections even
#                           the floor's p99 is over 50 ms on a 2-core VM
#                           (docs/BENCHMARKS.md), so a run with a looser
#                           bound can still compare the peers there
#   NCHAN_NODELAY=1         nginx sets TCP_NODELAY on its sockets, as the hub
#                           and the floor do; by default nchan's WebSocket
#                           subscribers run with Nagle's algorithm
#                           (scripts/lib/nchan.sh)
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
# stopped on exit; bounded: at most 8 steps per peer and size.
set -euo pipefail

DUR=${1:-8}
SIZES=${SIZES:-250 1000 10000}
P99_MS=${P99_MS:-50}
for n in $SIZES; do
    case $n in 250|1000|10000) ;; *) echo "SIZES: each of 250, 1000, 10000" >&2; exit 1 ;; esac
done
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

# ticks PID...: CPU time (user + system, clock ticks) of the processes.
ticks() {
    local t=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        # Fields after the command's closing parenthesis: utime is 12th, stime 13th.
        t=$(( t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}') ))
    done
    echo "$t"
}

# server_pids PEER PID: the processes that serve a step.
server_pids() {
    case $1 in
        nchan) echo "$2 $(cat "$TMP/nginx.pid") $(pgrep -P "$(cat "$TMP/nginx.pid")" | tr '\n' ' ')" ;;
        *) echo "$2" ;;
    esac
}

# step PEER N RATE: runs one step; prints "offered delivered p99_ms
# p99_all_ms verdict server_cores client_cores".
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
        --no-progress --out "$dir" "${args[@]}" >"$dir.txt" 2>&1 &
    local lt=$! hz from window s0 c0 s1 c1 srv=()
    hz=$(getconf CLK_TCK)
    # The steady part: from a second after the ramp to a second before the end.
    from=$(( n / 2000 + 1 )); window=$(( dur - from - 1 ))
    sleep "$from"
    read -r -a srv <<<"$(server_pids "$peer" "$pid")"
    s0=$(ticks "${srv[@]}"); c0=$(ticks "$lt")
    sleep "$window"
    s1=$(ticks "${srv[@]}"); c1=$(ticks "$lt")
    wait "$lt" || true
    t1=$(date +%s.%N)
    local cpu
    cpu=$(python3 -c "print(f'{($s1 - $s0) / $hz / $window:.2f} {($c1 - $c0) / $hz / $window:.2f}')")
    local per_conn=$rate
    if [ "$peer" = hub ]; then
        per_conn=$(python3 -c "print(($(book_seq) - $seq0) / ($t1 - $t0))")
    fi
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    python3 - "$dir/result.json" "$peer" "$n" "$rate" "$per_conn" "$P99_MS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); peer = sys.argv[2]
bound = float(sys.argv[6])
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
ok = ok and p99 <= bound
print(f"{n * per:.0f} {got:.0f} {p99:.2f} {p99_all:.2f} {'pass' if ok else 'fail'}", end=" ")
PY
    echo "$cpu"
}

declare -A RATES=([250]="200 400 800 1600 3200 6400" [1000]="50 100 200 400 800 1600" [10000]="5 10 20 40 80 160")
echo "peer conns rate/conn offered delivered p99_ms p99_all_ms verdict server_cores client_cores" \
    | tee "$OUT/steps.txt"
# run_step PEER N RATE: one step, its line in steps.txt; sets $ok and $got.
run_step() {
    local offered p99 p99_all srv_cpu cli_cpu
    read -r offered got p99 p99_all ok srv_cpu cli_cpu < <(step "$1" "$2" "$3")
    echo "$1 $2 $3 $offered $got $p99 $p99_all $ok $srv_cpu $cli_cpu" | tee -a "$OUT/steps.txt"
}
for n in $SIZES; do
    for peer in hub nchan floor; do
        best=0; saturated=no; passed=0; failed=0
        for rate in ${RATES[$n]}; do
            run_step "$peer" "$n" "$rate"
            [ "$ok" = pass ] || { saturated=yes; failed=$rate; break; }
            best=$got; passed=$rate
        done
        # A first step that fails: halve the rate (at most 3 times) until
        # one passes, so a slow host still gives each peer a maximum.
        for _ in 1 2 3; do
            (( passed == 0 && failed / 2 >= 1 )) || break
            rate=$(( failed / 2 ))
            run_step "$peer" "$n" "$rate"
            if [ "$ok" = pass ]; then best=$got; passed=$rate; else failed=$rate; fi
        done
        # Bisect twice between the last pass and the first failure.
        if [ "$saturated" = yes ] && (( passed > 0 )); then
            for _ in 1 2; do
                rate=$(python3 -c "print(round(($passed * $failed) ** 0.5))")
                # Small rates: no whole rate between the two is left.
                (( rate > passed && rate < failed )) || break
                run_step "$peer" "$n" "$rate"
                if [ "$ok" = pass ]; then best=$got; passed=$rate; else failed=$rate; fi
            done
        fi
        echo "$peer $n $best $saturated" >>"$OUT/max.txt"
    done
done

echo; echo "largest passing rate (msgs/s over all connections; 0: the first step and its halvings failed; >=: no step failed):"
python3 - "$OUT/max.txt" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
best = {(p, int(n)): float(v) for p, n, v, _ in rows}
more = {(p, int(n)): s == "no" for p, n, _, s in rows}
print(f"{'conns':>6} {'hub':>10} {'nchan':>10} {'floor':>10} {'hub/nchan':>10} {'hub/floor':>10}")
for n in sorted({int(n) for _, n, _, _ in rows}):
    h, x, f = best[("hub", n)], best[("nchan", n)], best[("floor", n)]
    ratio = lambda a, b: f"{a / b:.2f}x" if b else "-"
    cell = lambda p, v: ((">=" if more[(p, n)] else "") + f"{v:.0f}").rjust(10)
    print(f"{n:>6} {cell('hub', h)} {cell('nchan', x)} {cell('floor', f)} {ratio(h, x):>10} {ratio(h, f):>10}")
PY

echo; echo "latency at a common rate (ms, live, the whole step; ratios p50/p99/p99.9):"
python3 - "$OUT" "$SIZES" <<'PY'
import json, os, sys
out, sizes = sys.argv[1], [int(n) for n in sys.argv[2].split()]
# The steps in the order they ran: each peer's ladder, then its bisections.
verdict, ran = {}, {}
for line in open(os.path.join(out, "steps.txt")).readlines()[1:]:
    f = line.split()
    verdict[(f[0], int(f[1]), int(f[2]))] = f[7]
    ran.setdefault(int(f[1]), []).append(int(f[2]))
peers = ["hub", "nchan", "floor"]
print(f"{'conns':>6} {'rate/conn':>9} " + " ".join(f"{p + ' p50/p99/p99.9':>24}" for p in peers)
      + f" {'hub/floor':>17} {'nchan/floor':>17}")
for n in sizes:
    common = sorted(r for r in set(ran[n]) if all(verdict.get((p, n, r)) == "pass" for p in peers))
    rate = common[-1] if common else ran[n][0]
    lat = {}
    for p in peers:
        path = os.path.join(out, f"{p}-{n}-{rate}", "result.json")
        if not os.path.exists(path):
            break
        live = json.load(open(path))["latency_us"]["live"]
        lat[p] = [live[k] / 1000 for k in ("p50", "p99", "p999")]
    if len(lat) < 3:
        print(f"{n:>6} {rate:>9}  (a peer did not run this step)")
        continue
    cells = " ".join(f"{'/'.join(f'{v:.2f}' for v in lat[p]):>24}" for p in peers)
    ratio = lambda p: "/".join(f"{a / b:.2f}" if b else "-" for a, b in zip(lat[p], lat["floor"]))
    note = "" if common else "  (not passed by all three)"
    print(f"{n:>6} {rate:>9} {cells} {ratio('hub'):>17} {ratio('nchan'):>17}{note}")
PY
