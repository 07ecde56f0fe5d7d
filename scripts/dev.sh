#!/usr/bin/env bash
# The two set-up-inclusive entry points of the README. Each provisions only what
# is missing (engine and registry, Python environment, base image), then runs:
#
#   scripts/dev.sh build [invoke build options]   # build every variant (or those named) locally
#   scripts/dev.sh test  [nox options]            # run every test session
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${CONJURE_VENV:-.venv}"
log() { printf '[dev] %s\n' "$*" >&2; }
die() { printf '[dev] error: %s\n' "$*" >&2; exit 1; }

usage() { die "usage: scripts/dev.sh build|test [options passed on to invoke build / nox]"; }

ensure_engine() {
  local need_registry=$1
  if timeout 5 docker info >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1 &&
    { [ "$need_registry" -eq 0 ] || curl -fsS -o /dev/null "http://${CONJURE_REGISTRY:-127.0.0.1:5000}/v2/"; }; then
    return
  fi
  if command -v apt-get >/dev/null; then
    log "engine, buildx or registry missing: running scripts/provision-engine.sh"
    scripts/provision-engine.sh
  else
    die "no Docker engine with buildx answers (fix: start Docker >= 26 with buildx; on Debian run scripts/provision-engine.sh)"
  fi
}

ensure_python() {
  command -v python3 >/dev/null || die "python3 is missing (fix: apt-get install python3 python3-venv)"
  if [ ! -x "$VENV/bin/python" ]; then
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      command -v apt-get >/dev/null || die "python3 cannot create a virtual environment (fix: install python3-venv)"
      log "installing python3-venv"
      apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$VENV"
    fi
  fi
  # Reinstall only when the project's metadata changed.
  local stamp="$VENV/.conjure-installed" want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing the project and its dev tools into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e '.[dev]'
    echo "$want" >"$stamp"
  fi
}

ensure_base() {
  local base
  base=$("$VENV/bin/python" -c 'from conjure_sandbox.config import Settings; print(Settings.from_env().local_base)')
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    log "local base image $base missing: running invoke base"
    "$VENV/bin/invoke" base
  fi
}

[ $# -ge 1 ] || usage
command=$1
shift
case "$command" in
  build)
    ensure_engine 0
    ensure_python
    ensure_base
    # Every variant unless the options name some (--variant) or all (--all) already.
    case " $* " in
      *" --variant"* | *" --all "*) exec "$VENV/bin/invoke" build "$@" ;;
      *) exec "$VENV/bin/invoke" build --all "$@" ;;
    esac
    ;;
  test)
    ensure_engine 1
    ensure_python
    ensure_base
    exec "$VENV/bin/nox" "$@"
    ;;
  *) usage ;;
esac
