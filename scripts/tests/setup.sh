#!/usr/bin/env bash
# Tests the set-up functions scripts/test.sh and scripts/ci-checks.sh use
# (scripts/lib/python.sh, checkov.sh, moto.sh) in isolation, in a
# throwaway cache directory, without running the suite:
#   - offline (the default, a few seconds): with a python3 that lacks the
#     venv module, ensure_python calls apt-get (a stub that records its
#     arguments) for python3 python3-venv python3-pip; with a working
#     python3 it calls nothing; ensure_moto with a moto already answering
#     and its virtualenv in place installs nothing and starts nothing.
#   - --install (about a minute, PyPI): ensure_moto makes the virtualenv
#     in the throwaway cache, installs moto[server] there (not in the
#     system Python) and starts moto from it (scripts/lib/moto-server) on
#     a free port; a second call finds it all in place. The server is stopped at the end.
# Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."

log() { printf '==> %s\n' "$*"; }
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
ok() { echo "pass: $1"; passed=$((passed + 1)); }
not_ok() { echo "FAIL: $1" >&2; failed=$((failed + 1)); }

# A stub apt-get (and sudo) first on PATH that records what it was asked.
stubs="$work/stubs"
mkdir -p "$stubs"
cat >"$stubs/apt-get" <<STUB
#!/bin/sh
echo "\$*" >>"$work/apt-get.calls"
STUB
cat >"$stubs/sudo" <<'STUB'
#!/bin/sh
exec "$@"
STUB
chmod +x "$stubs/apt-get" "$stubs/sudo"

# 1. A python3 without the venv module: apt-get is asked for all three.
mkdir -p "$work/nopy"
cat >"$work/nopy/python3" <<'STUB'
#!/bin/sh
exit 1
STUB
chmod +x "$work/nopy/python3"
(
  PATH="$stubs:$work/nopy:$PATH"
  source scripts/lib/python.sh
  ensure_python
) >/dev/null
if grep -qx -- "install -y -qq python3 python3-venv python3-pip" "$work/apt-get.calls" 2>/dev/null; then
  ok "ensure_python installs python3 python3-venv python3-pip where venv is missing"
else
  not_ok "ensure_python did not ask apt-get for python3 python3-venv python3-pip (calls: $(cat "$work/apt-get.calls" 2>/dev/null))"
fi

# 2. A working python3: apt-get is not called.
rm -f "$work/apt-get.calls"
if python3 -c 'import ensurepip, venv' 2>/dev/null; then
  (
    PATH="$stubs:$PATH"
    source scripts/lib/python.sh
    ensure_python
  ) >/dev/null
  if [ ! -e "$work/apt-get.calls" ]; then
    ok "ensure_python calls no apt-get where python3 has venv"
  else
    not_ok "ensure_python called apt-get although python3 has venv: $(cat "$work/apt-get.calls")"
  fi
fi

# 3. ensure_moto where a moto answers and the virtualenv is in place (a
#    fake one at the pinned version): no install, no second server.
fake_cache="$work/fake-cache"
mkdir -p "$fake_cache/nax-moto/bin"
version=$(sed -n 's/^MOTO_VERSION="\(.*\)"/\1/p' scripts/lib/moto.sh)
cat >"$fake_cache/nax-moto/bin/python" <<STUB
#!/bin/sh
case "\$*" in *importlib.metadata*) exit 0 ;; esac
echo "python \$*" >>"$work/moto.calls"
STUB
cat >"$fake_cache/nax-moto/bin/moto_server" <<STUB
#!/bin/sh
echo "moto_server \$*" >>"$work/moto.calls"
STUB
chmod +x "$fake_cache/nax-moto/bin/python" "$fake_cache/nax-moto/bin/moto_server"
# Something that answers /moto-api/ on a free port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 "$port" --directory "$work" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
out=$(
  XDG_CACHE_HOME="$fake_cache" NAX_TEST_MOTO_PORT="$port" PATH="$stubs:$PATH" bash -c '
    log() { echo "$*"; }
    source scripts/lib/moto.sh
    ensure_moto && echo "NAX_TEST_MOTO_SERVER=$NAX_TEST_MOTO_SERVER"'
)
if [ ! -e "$work/moto.calls" ] && [ ! -e "$work/apt-get.calls" ] \
  && grep -qx "NAX_TEST_MOTO_SERVER=$PWD/scripts/lib/moto-server" <<<"$out"; then
  ok "ensure_moto installs and starts nothing where moto answers and its virtualenv is in place"
else
  not_ok "ensure_moto with moto answering: output [$out], calls [$(cat "$work/moto.calls" "$work/apt-get.calls" 2>/dev/null)]"
fi

# 4. --install: the real install into a throwaway cache, and a real start.
if [ "${1:-}" = "--install" ]; then
  cache="$work/cache"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  started=$SECONDS
  XDG_CACHE_HOME="$cache" NAX_TEST_MOTO_PORT="$port" MOTO_LOG="$work/moto.log" bash -c '
    log() { echo "==> $*"; }
    source scripts/lib/moto.sh
    ensure_moto' || true
  echo "(install and start took $((SECONDS - started)) s)"
  pid=$(pgrep -f "$cache/nax-moto/bin/python .*moto_server.py" | head -1)
  [ -n "$pid" ] && pids+=("$pid")
  if [ -x "$cache/nax-moto/bin/moto_server" ] && [ -n "$pid" ] \
    && curl -s -o /dev/null "http://127.0.0.1:$port/moto-api/"; then
    ok "ensure_moto installs moto[server] into its own virtualenv and starts moto_server from it"
  else
    not_ok "ensure_moto: no moto_server from $cache/nax-moto answering on $port (log: $(tail -5 "$work/moto.log" 2>/dev/null))"
  fi
  again=$(XDG_CACHE_HOME="$cache" NAX_TEST_MOTO_PORT="$port" bash -c '
    log() { echo "==> $*"; }
    source scripts/lib/moto.sh
    ensure_moto')
  if [ -z "$again" ]; then
    ok "ensure_moto a second time: nothing to install or start"
  else
    not_ok "ensure_moto a second time did: $again"
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
