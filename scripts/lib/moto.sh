# Sourced by scripts/test.sh (which defines `log`): moto_server, the AWS
# emulator the tests run S3, SQS, EventBridge, DynamoDB, KMS and Secrets
# Manager against (docs/ARCHITECTURE.md). moto[server] lives in a
# virtualenv of its own (scripts/lib/python.sh), pinned so that a new
# release shows up as a change here. It is started through
# scripts/lib/moto-server, which handles DynamoDB requests one at a time
# (moto's transactions are not atomic against each other:
# scripts/lib/moto_server.py); the tests that start a moto of their own
# (testkit's OwnServer::moto) find that launcher through
# NAX_TEST_MOTO_SERVER.
source scripts/lib/python.sh
MOTO_VENV="$NAX_CACHE/nax-moto"
MOTO_VERSION="5.2.1"

moto_answers() {
  curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/moto-api/"
}

ensure_curl() {
  if ! command -v curl >/dev/null 2>&1; then
    log "installing curl (Debian)"
    apt_install curl
  fi
}

# Installs moto[server] into $MOTO_VENV when it is not there at the pinned
# version, exports MOTO_VENV, NAX_TEST_MOTO_SERVER (the launcher) and
# NAX_TEST_MOTO_PORT (default 5000), and starts moto from the virtualenv on
# 127.0.0.1 unless one already answers on that port.
ensure_moto() {
  ensure_curl
  if ! "$MOTO_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '$MOTO_VERSION')" >/dev/null 2>&1 \
    || [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
    log "installing moto[server] $MOTO_VERSION (PyPI) into $MOTO_VENV"
    make_venv "$MOTO_VENV" "moto[server]==$MOTO_VERSION"
  fi
  export MOTO_VENV
  export NAX_TEST_MOTO_SERVER
  NAX_TEST_MOTO_SERVER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/moto-server"
  export NAX_TEST_MOTO_PORT="${NAX_TEST_MOTO_PORT:-5000}"
  if ! moto_answers "$NAX_TEST_MOTO_PORT"; then
    log "starting moto (scripts/lib/moto-server) on 127.0.0.1:${NAX_TEST_MOTO_PORT} (log: ${MOTO_LOG:-/tmp/nax-moto.log})"
    nohup "$NAX_TEST_MOTO_SERVER" -H 127.0.0.1 -p "$NAX_TEST_MOTO_PORT" >"${MOTO_LOG:-/tmp/nax-moto.log}" 2>&1 &
    for _ in $(seq 300); do moto_answers "$NAX_TEST_MOTO_PORT" && break; sleep 0.1; done
  fi
  moto_answers "$NAX_TEST_MOTO_PORT" \
    || { echo "error: moto_server does not answer on 127.0.0.1:$NAX_TEST_MOTO_PORT" >&2; return 1; }
}
