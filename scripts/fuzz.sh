#!/usr/bin/env bash
# Fuzzes the parsers of outside input (docs/SECURITY.md, "Input bounds")
# for a bounded time: builds every target of fuzz/ once, then runs each for
# FUZZ_SECONDS seconds (default 20) from its seed corpus, FUZZ_JOBS at a
# time. Fails, once every target has run, when one found a crash, panic,
# broken invariant, timeout or out-of-memory; the input that caused it is
# left in fuzz/artifacts/<target>/ (reproduce with
# `cargo +nightly fuzz run $FUZZ_BUILD_FLAGS <target> <file>`).
#
# The seed corpora (fuzz/corpus/<target>/) are only read: inputs found
# during a run go to a scratch directory, removed afterwards.
#
# Installs what it needs when it is missing: the nightly toolchain (rustup)
# and cargo-fuzz (crates.io). Idempotent; safe to run repeatedly.
#
# Environment:
#   FUZZ_SECONDS      seconds per target (default 20)
#   FUZZ_TARGETS      targets to run, space separated (default: all)
#   FUZZ_JOBS         targets run at the same time (default: the cores,
#                     at most 4: each may use up to 2 GB)
#   FUZZ_BUILD_FLAGS  cargo-fuzz build flags (default below)
#   FUZZ_BUILD_ONLY   set to 1: install and build, run nothing
#                     (scripts/test.sh builds while the tests run)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
ALL_TARGETS="ws_op rest_bodies webhooks replay_line config_file upstream_frame ws_inflate store_log"
read -r -a TARGETS <<<"${FUZZ_TARGETS:-$ALL_TARGETS}"
# Unoptimized code with debug assertions and overflow checks, without
# AddressSanitizer: the code under test is safe Rust plus simd-json. On a
# 2-core machine the fuzz workspace (the hub, the API and their AWS SDKs)
# builds in ~5 min this way against ~15 min optimized (`--release`, the
# cargo-fuzz default), which is what the test script can afford; runs are
# a few times slower. For a long run, build optimized:
#   FUZZ_BUILD_FLAGS="-s none --debug-assertions" FUZZ_SECONDS=3600 scripts/fuzz.sh
read -r -a BUILD_FLAGS <<<"${FUZZ_BUILD_FLAGS:--s none --dev --debug-assertions}"

if ! rustup toolchain list | grep -q '^nightly'; then
  log "installing the nightly toolchain (rustup)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked
fi

cd fuzz
# fuzz/ is outside the workspace that scripts/test.sh formats and lints.
cargo fmt -- --check
log "fuzz: building ${TARGETS[*]} (${BUILD_FLAGS[*]})"
started=$(date +%s)
if [ -z "${FUZZ_TARGETS:-}" ]; then
  cargo +nightly fuzz build "${BUILD_FLAGS[@]}"
else
  for target in "${TARGETS[@]}"; do
    cargo +nightly fuzz build "${BUILD_FLAGS[@]}" "$target"
  done
fi
log "fuzz: built in $(($(date +%s) - started)) s"
if [ "${FUZZ_BUILD_ONLY:-}" = 1 ]; then
  exit 0
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# One target, its output to $scratch/<target>.log, its status to .rc.
run_target() {
  local target=$1 status=0
  mkdir -p "$scratch/$target" "artifacts/$target"
  # The first corpus directory receives new inputs: the scratch one.
  # Progress lines are dropped; the findings and final stats remain.
  cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$target" \
    "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$scratch/$target.raw" 2>&1 || status=$?
  { grep -Ev '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$scratch/$target.raw" || true; } >"$scratch/$target.log"
  echo "$status" >"$scratch/$target.rc"
}

# FUZZ_JOBS targets at a time (default: one per core, at most 4, since
# each may grow to -rss_limit_mb). Each libFuzzer process is one busy
# thread, and nothing else runs at this point of scripts/test.sh, so on
# 2 cores the seven targets take four rounds of FUZZ_SECONDS, not seven.
cores=$(nproc)
jobs_max="${FUZZ_JOBS:-$((cores < 4 ? cores : 4))}"
log "fuzz: ${TARGETS[*]} for ${FUZZ_SECONDS} s each, ${jobs_max} at a time"
for target in "${TARGETS[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
  run_target "$target" &
done
wait

failed=()
for target in "${TARGETS[@]}"; do
  log "fuzz: $target"
  cat "$scratch/$target.log"
  [ "$(cat "$scratch/$target.rc")" = 0 ] || failed+=("$target")
done
if [ "${#failed[@]}" -gt 0 ]; then
  for target in "${failed[@]}"; do
    echo "error: fuzz target $target failed; its input is in fuzz/artifacts/$target/" >&2
  done
  exit 1
fi
log "fuzz: every target ran ${FUZZ_SECONDS} s without a finding"
