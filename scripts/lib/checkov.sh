# Sourced by scripts/test.sh and scripts/ci-checks.sh (each defines `log`).
# checkov pins old boto3/botocore (and more), which would downgrade moto's
# in the shared site-packages, so it lives in a virtualenv of its own.
CHECKOV_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/nax-checkov"

ensure_checkov() {
  if ! "$CHECKOV_VENV/bin/checkov" --version >/dev/null 2>&1; then
    log "installing checkov (PyPI) into $CHECKOV_VENV"
    python3 -m venv "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/python" -m pip install -q checkov
  fi
}
