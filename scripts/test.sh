#!/usr/bin/env bash
# The one test command: installs and starts what the tests need when it is
# missing (redis-server, openssl, curl, python3, python3-venv and
# python3-pip from Debian; moto[server] and checkov from PyPI, each into a
# virtualenv of its own under ~/.cache, never the system Python; Node.js,
# npm, chromium and chromium-driver from Debian; playwright-core from
# npm), then checks the Terraform with checkov and
# the container image, Compose file and CI workflows (scripts/ci-checks.sh), runs
# every test of the workspace, lints included, the JavaScript client's
# tests (node --test) and the trading page's tests in Chromium, and fuzzes
# the parsers of outside input for a bounded time (scripts/fuzz.sh:
# nightly and cargo-fuzz, installed when missing). Idempotent; safe to run
# repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says how long the script has run, so a slow step shows in CI's log.
log() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

ensure_redis() {
  if ! command -v redis-server >/dev/null; then
    log "installing redis-server (Debian)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  fi
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    log "starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null
}

# The Redis TLS test makes its certificates with the openssl command.
ensure_openssl() {
  if ! command -v openssl >/dev/null; then
    log "installing openssl (Debian)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl
  fi
}

# moto[server] in a virtualenv of its own: ensure_moto (scripts/lib/moto.sh).
source scripts/lib/moto.sh

# CHECKOV_VENV and ensure_checkov, shared with scripts/ci-checks.sh.
source scripts/lib/checkov.sh

# The client's tests need Node >= 20.10 (its WebSocket behind
# --experimental-websocket); the page's tests drive Debian's Chromium with
# playwright-core (which cannot download a browser of its own here).
ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "installing nodejs and npm (Debian)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
  fi
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 10) ? 0 : 1)' \
    || { echo "error: Node.js >= 20.10 needed, found $(node --version)" >&2; exit 1; }
}

ensure_chromium() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "installing chromium and chromium-driver (Debian)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
  fi
  (cd hub/browser-tests && npm ci --no-audit --no-fund --loglevel=error)
}

# A debug build of the workspace takes about 5 GB. A full disk shows up as a
# linker "bus error" far from its cause, so say it plainly up front.
ensure_disk() {
  local free_kb
  free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
  log "disk: $((free_kb / 1024 / 1024)) GiB free"
  if [ "$free_kb" -lt $((4 * 1024 * 1024)) ]; then
    echo "error: less than 4 GiB free on $(df -P . | awk 'NR==2 {print $6}'); the build needs about 5 GiB" >&2
    exit 1
  fi
}

# Python's `websockets`, the second client library the compression tests
# talk to the hub with (hub/tests/deflate.rs), in a virtualenv of its own;
# the tests run it as NAX_TEST_PYTHON.
ensure_websockets() {
  local venv="$NAX_CACHE/nax-websockets"
  if ! "$venv/bin/python" -c "import websockets" >/dev/null 2>&1; then
    log "installing websockets 15.0.1 (PyPI) into $venv"
    make_venv "$venv" "websockets==15.0.1"
  fi
  export NAX_TEST_PYTHON="$venv/bin/python"
}

# The tests run under cargo-nextest, each in a process of its own: a
# crate's integration tests are one binary (tests/all.rs), and tests that
# install a process-wide logger or set the environment would meet in one
# process under plain `cargo test`. The version the development machines
# and CI's workflow bring; any recent one runs the suite.
NEXTEST_VERSION=0.9.143
ensure_nextest() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest $NEXTEST_VERSION (crates.io)"
    cargo install --locked "cargo-nextest@$NEXTEST_VERSION"
  fi
}

ensure_disk
ensure_nextest
ensure_redis
ensure_openssl
ensure_moto
ensure_checkov
ensure_websockets
# The set-up functions above, offline against stubs (a second; it needs
# the python3 and curl they installed).
log "set-up functions (scripts/tests/setup.sh)"
scripts/tests/setup.sh
# The moto wrapper's locks, with threads switching every microsecond
# (~20 s): on a standard and a FIFO queue, every SQS message deleted once,
# no request failing, no send held up by a long poll.
log "moto's SQS under racing threads (scripts/tests/moto_sqs_race.py)"
"$MOTO_VENV/bin/python" scripts/tests/moto_sqs_race.py
ensure_node
ensure_chromium

# The fuzz targets build in their own target directory with the nightly
# toolchain, so nothing of the workspace's build is shared: start that
# build (and the install of cargo-fuzz when missing) now, at the lowest
# CPU priority, so it takes the time the lints, builds and tests leave
# idle (the tests wait on moto, timers and sockets); the targets run at
# the end. Its own process group (job control on for that one job), so
# an early exit stops all of it; not its own session (setsid), which
# would put it in a scheduler autogroup of its own, where nice 19 no
# longer yields to the tests.
log "fuzz targets: building in the background (nice 19; target/fuzz-build.log)"
mkdir -p target
set -m
FUZZ_BUILD_ONLY=1 nice -n 19 scripts/fuzz.sh >target/fuzz-build.log 2>&1 &
fuzz_build=$!
set +m
trap 'kill -- -"$fuzz_build" 2>/dev/null || true' EXIT

# Before the cargo steps: fast, and fails early. --skip-download: no call to
# the vendor's platform (the checks themselves ship with checkov).
log "terraform checks (checkov)"
"$CHECKOV_VENV/bin/checkov" -d infra/terraform --quiet --compact --skip-download

# The container image, docker-compose.yml and the CI workflows
# (docs/CONTAINER.md, "Checks"); builds the image where a daemon answers.
log "container and CI checks"
scripts/ci-checks.sh

log "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log "tests"
# One test more than there are cores (3 on 2): most tests wait on moto,
# Redis, timers and sockets, and at 2 the cores were a third idle
# (docs/BENCHMARKS.md, "Test-script time").
export NEXTEST_TEST_THREADS="${NEXTEST_TEST_THREADS:-$(($(nproc) + 1))}"
cargo nextest run --workspace --locked --no-fail-fast
cargo test --workspace --doc --locked

# The JavaScript client and the trading page, each against a real nax-hub
# on 127.0.0.1: the debug binary the cargo tests just built
# (target/debug/nax-hub; cargo builds a package's binaries for its
# integration tests). Not `cargo build -p hub` again: without the
# workspace's dev-dependencies, cargo resolves other features and
# recompiled ~2 min of dependencies to make the same binary.
#
# One suite after the other: side by side they saved ~70 s, but a client
# test that checks the pacing of its sends in every 1 s window failed
# once, with node's timers late while Chromium took the cores.
log "javascript client (node --test)"
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export NAX_HUB_BIN="$target_dir/debug/nax-hub"
[ -x "$NAX_HUB_BIN" ] || cargo build --workspace --bin nax-hub --locked
(cd clients/js && node --experimental-websocket --test --test-concurrency=1 test/*.test.mjs)
log "trading page (Chromium)"
(cd hub/browser-tests && node --test --test-concurrency=1 ./*.test.mjs)

# After the cargo tests: every fuzz target for FUZZ_SECONDS (default 20)
# from its seed corpus; fails on any finding (scripts/fuzz.sh).
log "fuzz targets: waiting for their build"
if ! wait "$fuzz_build"; then
  cat target/fuzz-build.log >&2
  echo "error: the fuzz targets did not build (target/fuzz-build.log)" >&2
  exit 1
fi
grep -E '^==> fuzz: built' target/fuzz-build.log || true
log "fuzzing"
scripts/fuzz.sh
log "done"
