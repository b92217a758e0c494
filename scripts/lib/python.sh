# Sourced by scripts/test.sh and scripts/ci-checks.sh (through
# scripts/lib/checkov.sh and scripts/lib/moto.sh; each script defines
# `log`). Every Python tool the scripts use lives in a virtualenv of its
# own under the cache directory, never in the system Python, which Debian
# 12 guards against pip (PEP 668: "externally-managed-environment").

NAX_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}"

# Installs Debian packages with apt-get; sudo where the script does not run
# as root (a GitHub-hosted runner).
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# python3 with its venv module (which Debian ships apart, with ensurepip,
# as python3-venv) and pip: what a new Debian 12 machine lacks.
ensure_python() {
  if ! command -v python3 >/dev/null 2>&1 \
    || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    log "installing python3, python3-venv and python3-pip (Debian)"
    apt_install python3 python3-venv python3-pip
  fi
}

# A virtualenv at $1 with the pip requirements that follow; --clear, so a
# half-made one (an install that was cut short) is made anew.
make_venv() {
  local dir="$1"
  shift
  ensure_python
  python3 -m venv --clear "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@"
}
