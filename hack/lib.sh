#!/usr/bin/env bash
# Shared helpers for the hack/ scripts. Source it: `source "$(dirname "$0")/lib.sh"`.
# Expensive artefacts live in a per-user cache keyed by version; services keep their state under a run directory.
#   WASMFLOW_CACHE  per-user cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/wasmflow): binaries, Go caches, toolchains
#   WASMFLOW_STATE  services' state (default $WASMFLOW_CACHE/run); each script takes --dir to use another
# Helpers: log, die, free_port, wait_for, as_root, ensure_debs, is_alive, pidfile_runs, start_daemon, stop_pidfile,
# running_pidfile, take_lock, release_lock.

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
# Set WAIT_FOR_PID to give up at once when that process (the service being waited for) has exited.
wait_for() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [[ -n ${WAIT_FOR_PID:-} ]] && ! is_alive "$WAIT_FOR_PID"; then
      log "${what}: the process ${WAIT_FOR_PID} exited"
      return 1
    fi
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

# stop_pidfile FILE [TIMEOUT]: TERM the process in FILE, KILL it after TIMEOUT (10) s, remove FILE. Safe when
# already stopped.
stop_pidfile() {
  local file=$1 pid
  [[ -f $file ]] || return 0
  pid=$(cat "$file")
  if is_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + ${2:-10}))
    while is_alive "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
    if is_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$file"
}

# running_pidfile FILE: true when FILE names a live process.
running_pidfile() {
  [[ -f $1 ]] && is_alive "$(cat "$1")"
}

# pidfile_runs FILE TEXT: FILE names a live process whose command line contains TEXT (e.g. its state directory), so a
# stale PID file whose number was reused by an unrelated process is never mistaken for our service.
pidfile_runs() {
  running_pidfile "$1" && tr '\0' ' ' <"/proc/$(cat "$1")/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# start_daemon PIDFILE LOGFILE COMMAND...: run COMMAND in the background, detached from our stdin and stdout (a caller
# capturing our output is not kept waiting), output appended to LOGFILE, without our lock descriptor; write its PID.
start_daemon() {
  local pidfile=$1 logfile=$2
  shift 2
  if [[ -n ${WASMFLOW_LOCK_FD:-} ]]; then
    "$@" </dev/null >>"$logfile" 2>&1 {WASMFLOW_LOCK_FD}>&- &
  else
    "$@" </dev/null >>"$logfile" 2>&1 &
  fi
  echo $! >"$pidfile"
}

# take_lock FILE [TIMEOUT]: hold an exclusive flock on FILE until release_lock or exit (one lock per script), so
# concurrent runs (two test sessions, make -j) take turns. Waits up to TIMEOUT (120) s.
take_lock() {
  mkdir -p "$(dirname "$1")"
  exec {WASMFLOW_LOCK_FD}>>"$1"
  flock -w "${2:-120}" "$WASMFLOW_LOCK_FD"
}

release_lock() {
  [[ -n ${WASMFLOW_LOCK_FD:-} ]] || return 0
  exec {WASMFLOW_LOCK_FD}>&-
  WASMFLOW_LOCK_FD=
}
