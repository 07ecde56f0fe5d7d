#!/usr/bin/env bash
# Bring up a real Docker engine with BuildKit, arm64 emulation and a loopback
# registry on a bare Debian 12 (bookworm) host without systemd.
#
# Idempotent: every step checks first and does nothing when already done, so a
# second run returns in about a second. Needs root (or sudo) and apt access to
# the Debian archive.
#
#   scripts/provision-engine.sh            # engine + arm64 emulation + registry
#   REGISTRY_PORT=5001 scripts/provision-engine.sh
set -euo pipefail

REGISTRY_ADDR="${REGISTRY_ADDR:-127.0.0.1}"
REGISTRY_PORT="${REGISTRY_PORT:-5000}"
STATE_DIR="${CONJURE_STATE_DIR:-/var/lib/conjure-sandbox}"
LOG_DIR="${CONJURE_LOG_DIR:-/var/log/conjure-sandbox}"
# bookworm's docker.io (20.10) lacks buildx and the containerd image store; these
# trixie packages install on bookworm and take their dependencies from bookworm.
TRIXIE_PACKAGES=(docker.io containerd docker-buildx)
HOST_PACKAGES=(qemu-user-static binfmt-support docker-registry debootstrap debian-archive-keyring gpgv curl ca-certificates)
# The engines the tests start beside this one (tests/engines.py): rootless Docker
# (dockerd-rootless.sh ships with docker.io) and rootless Podman.
HOST_PACKAGES+=(rootlesskit uidmap slirp4netns podman openssl iptables)

log() { printf '[provision] %s\n' "$*" >&2; }
die() { printf '[provision] error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root (or install sudo): this script installs packages and starts dockerd"
  SUDO="sudo"
fi

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    $SUDO apt-get update -qq
    apt_updated=1
  fi
}

missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || printf '%s\n' "$pkg"
  done
}

install_host_packages() {
  local missing
  mapfile -t missing < <(missing_packages "${HOST_PACKAGES[@]}")
  [ "${#missing[@]}" -eq 0 ] && return
  apt_update_once
  log "installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

engine_is_current() {
  command -v dockerd >/dev/null && docker buildx version >/dev/null 2>&1 &&
    dockerd --version | grep -qE 'version (2[6-9]|[3-9][0-9])\.'
}

install_engine() {
  engine_is_current && return
  . /etc/os-release
  local sources=/etc/apt/sources.list.d/conjure-trixie.sources
  local pin=/etc/apt/preferences.d/conjure-trixie
  if [ "${VERSION_CODENAME:-}" != "trixie" ] && [ ! -f "$sources" ]; then
    log "adding a trixie apt source, pinned so that only named downloads use it"
    $SUDO tee "$sources" >/dev/null <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    $SUDO tee "$pin" >/dev/null <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 1
PIN
    apt_updated=0
  fi
  apt_update_once
  local debs
  debs=$(mktemp -d)
  log "downloading ${TRIXIE_PACKAGES[*]} from trixie"
  (cd "$debs" && apt-get download -qq "${TRIXIE_PACKAGES[@]/%//trixie}" 2>/dev/null ||
    apt-get download -qq "${TRIXIE_PACKAGES[@]}")
  log "installing $(cd "$debs" && ls ./*.deb | tr '\n' ' ')"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$debs"/*.deb >/dev/null
  rm -rf "$debs"
}

configure_engine() {
  local want='{"features":{"containerd-snapshotter":true}}'
  $SUDO mkdir -p /etc/docker
  if [ ! -f /etc/docker/daemon.json ]; then
    echo "$want" | $SUDO tee /etc/docker/daemon.json >/dev/null
    log "wrote /etc/docker/daemon.json (containerd image store)"
  elif ! grep -q '"containerd-snapshotter": *true' /etc/docker/daemon.json; then
    die "/etc/docker/daemon.json exists without \"features\":{\"containerd-snapshotter\":true}; add it and rerun"
  fi
}

enable_arm64_emulation() {
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    log "mounting binfmt_misc"
    $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    log "enabling qemu-aarch64 in binfmt_misc"
    $SUDO update-binfmts --enable qemu-aarch64
    return 0
  fi
  return 1
}

engine_answers() { timeout 5 docker info >/dev/null 2>&1; }

wait_for() {
  local what=$1 seconds=$2; shift 2
  local i
  for ((i = 0; i < seconds * 4; i++)); do
    "$@" && return 0
    sleep 0.25
  done
  die "$what did not come up within ${seconds}s; see $LOG_DIR"
}

start_engine() {
  local restart=${1:-}
  if engine_answers && [ -z "$restart" ]; then
    return
  fi
  $SUDO mkdir -p "$LOG_DIR" "$STATE_DIR"
  if [ -f /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    log "restarting dockerd so that it offers linux/arm64"
    $SUDO kill "$(cat /var/run/docker.pid)"
    wait_for "dockerd shutdown" 30 bash -c '! [ -e /var/run/docker.pid ]'
  fi
  log "starting dockerd (log: $LOG_DIR/dockerd.log)"
  $SUDO bash -c "nohup dockerd >>'$LOG_DIR/dockerd.log' 2>&1 </dev/null &"
  $SUDO touch "$STATE_DIR/dockerd.managed"
  wait_for "dockerd" 60 engine_answers
}

registry_answers() { curl -fsS -o /dev/null "http://$REGISTRY_ADDR:$REGISTRY_PORT/v2/" 2>/dev/null; }

start_registry() {
  registry_answers && return
  local config="$STATE_DIR/registry.yml"
  $SUDO mkdir -p "$STATE_DIR/registry" "$LOG_DIR"
  $SUDO tee "$config" >/dev/null <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR:$REGISTRY_PORT
YML
  log "starting registry on $REGISTRY_ADDR:$REGISTRY_PORT (log: $LOG_DIR/registry.log)"
  $SUDO bash -c "nohup docker-registry serve '$config' >>'$LOG_DIR/registry.log' 2>&1 </dev/null &"
  wait_for "registry" 30 registry_answers
}

arm64_offered() { docker buildx inspect --bootstrap 2>/dev/null | grep -q 'linux/arm64'; }

main() {
  command -v apt-get >/dev/null || die "this script provisions Debian hosts; elsewhere install Docker >= 26 with buildx yourself"
  install_host_packages
  if engine_answers && docker buildx version >/dev/null 2>&1; then
    # An engine someone else runs: leave its packages and configuration alone.
    log "an engine already answers; not reinstalling or reconfiguring it"
    enable_arm64_emulation || true
    arm64_offered || log "warning: the running engine does not offer linux/arm64; restart it to pick up QEMU"
  else
    install_engine
    configure_engine
    enable_arm64_emulation || true
    start_engine
  fi
  if ! arm64_offered && [ -f /var/run/docker.pid ] && [ -f "$STATE_DIR/dockerd.managed" ]; then
    start_engine restart
  fi
  start_registry
  log "engine: $(docker version -f 'server {{.Server.Version}}, client {{.Client.Version}}')"
  log "buildx: $(docker buildx version)"
  log "platforms: $(docker buildx inspect 2>/dev/null | sed -n 's/^Platforms: *//p' | head -n1)"
  log "registry: http://$REGISTRY_ADDR:$REGISTRY_PORT/v2/ answers"
}

main "$@"
