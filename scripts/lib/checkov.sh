# Sourced by scripts/test.sh and scripts/ci-checks.sh (each defines `log`).
# checkov pins old boto3/botocore (and more), which would clash with
# moto's, so it lives in a virtualenv of its own (scripts/lib/python.sh).
source scripts/lib/python.sh
CHECKOV_VENV="$NAX_CACHE/nax-checkov"

ensure_checkov() {
  if ! "$CHECKOV_VENV/bin/checkov" --version >/dev/null 2>&1; then
    log "installing checkov (PyPI) into $CHECKOV_VENV"
    make_venv "$CHECKOV_VENV" checkov
  fi
}
