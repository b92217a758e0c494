#!/usr/bin/env bash
# A DWARF profile of one hub binary under the REST order flow: runs
# `scripts/orders-ab.sh RATE 30 1 BIN` (so the same TOML, port and load
# generator as the A/B figures), records 8 s of the hub from 14 s after
# the start (`perf record -F 299 --call-graph dwarf,16384`), stops the
# run, and prints the samples by thread and owner
# (`scripts/perf-owners.py`; docs/BENCHMARKS.md, "Where an order's CPU
# goes"). The `perf script` text stays in OUT for drilling further.
# Alternate builds (A B B A) and compare shares, not sample counts
# alone: a cpu-clock profile samples only while the hub runs, and this
# 2-core host's noise moves the counts from run to run.
#
#   scripts/orders-profile.sh BIN [RATE]
#     BIN   the hub binary
#     RATE  orders/s offered (default 2000)
#
# Needs `perf` (linux-perf). Reports land in $OUT (default
# /tmp/orders-profile): NAME.txt, the run's log, and the owners.
set -euo pipefail

BIN=${1:?usage: $0 BIN [RATE]}
RATE=${2:-2000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/orders-profile}
NAME=$(basename "$BIN")
mkdir -p "$OUT"
command -v perf >/dev/null || { echo "no perf: apt-get install linux-perf" >&2; exit 2; }

# A session of its own, so the stop ends the run's hub and load generator
# and nothing else on the host.
OUT="$OUT/run" MEASURE=10 setsid "$ROOT/scripts/orders-ab.sh" "$RATE" 30 1 "$BIN" > "$OUT/$NAME.log" 2>&1 &
RUN=$!
trap 'kill -- -"$RUN" 2>/dev/null || true' EXIT
sleep 14
# The hub orders-ab.sh started: its command line is "BIN --config ...".
PID=$(pgrep -s "$RUN" -f -- "^$BIN --config") || { echo "no $BIN running; see $OUT/$NAME.log" >&2; exit 1; }
perf record -F 299 --call-graph dwarf,16384 -p "$PID" -o "$OUT/$NAME.data" -- sleep 8 > /dev/null 2>&1
perf script -i "$OUT/$NAME.data" > "$OUT/$NAME.txt" 2>/dev/null
rm -f "$OUT/$NAME.data"
"$ROOT/scripts/perf-owners.py" < "$OUT/$NAME.txt" | tee "$OUT/$NAME.owners"
