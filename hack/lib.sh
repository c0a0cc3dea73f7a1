#!/usr/bin/env bash
# Shared helpers for the hack/ scripts. Source it: `source "$(dirname "$0")/lib.sh"`.
# Expensive artefacts live in a per-user cache keyed by version; services keep their state under a run directory.

WASMFLOW_CACHE="${WASMFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmflow}"
WASMFLOW_STATE="${WASMFLOW_STATE:-$WASMFLOW_CACHE/run}"
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export WASMFLOW_CACHE WASMFLOW_STATE HACK_DIR

log() { echo "[$(basename "$0")] $*" >&2; }
die() { log "error: $*"; exit 1; }

# A free TCP port on loopback, chosen by the kernel.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for TIMEOUT_SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s until it succeeds or time runs out.
wait_for() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for ${what}"
      return 1
    fi
    sleep 0.2
  done
}

# Root runs apt directly; anyone else goes through sudo.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# ensure_debs PACKAGE...: install the Debian packages that are missing (apt-get update only if the first try fails).
ensure_debs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { as_root apt-get update -qq && as_root apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
}

# is_alive PID: true while PID runs. A zombie counts as gone: our services outlive the script that started them,
# so their parent is an init that may reap them a second or more after they exit (kill -0 still succeeds then).
is_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ -n $stat && ${stat%% *} != Z && ${stat%% *} != X ]]
}

# stop_pidfile FILE: TERM the process in FILE, KILL it after 10 s, remove FILE. Safe when already stopped.
stop_pidfile() {
  local file=$1 pid
  [[ -f $file ]] || return 0
  pid=$(cat "$file")
  if is_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while is_alive "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
    if is_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$file"
}

# running_pidfile FILE: true when FILE names a live process.
running_pidfile() {
  [[ -f $1 ]] && is_alive "$(cat "$1")"
}
