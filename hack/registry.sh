#!/usr/bin/env bash
# Two real OCI registries for the tests (Debian's docker-registry, i.e. CNCF distribution), plain HTTP on loopback:
#   plain  anonymous read/write
#   auth   htpasswd basic auth (user "wasmflow", a random password written here)
# usage: hack/registry.sh start|stop|status|env [--dir DIR]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

cmd=${1:-}
shift || true
DIR="$WASMFLOW_STATE/registry"
while (($#)); do
  case $1 in
    --dir) DIR=$2; shift 2 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

healthy() { # name expected-status
  [[ -f $DIR/$1.addr ]] || return 1
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$(cat "$DIR/$1.addr")/v2/") || return 1
  [[ $code == "$2" ]]
}

write_config() { # name port [auth]
  local name=$1 port=$2 auth=${3:-}
  mkdir -p "$DIR/$name-data"
  {
    echo "version: 0.1"
    echo "log: {level: warn, accesslog: {disabled: true}}"
    echo "storage:"
    echo "  filesystem: {rootdirectory: $DIR/$name-data}"
    echo "  delete: {enabled: true}"
    echo "http:"
    echo "  addr: 127.0.0.1:$port"
    echo "  headers: {X-Content-Type-Options: [nosniff]}"
    if [[ -n $auth ]]; then
      echo "auth:"
      echo "  htpasswd: {realm: wasmflow-test, path: $DIR/htpasswd}"
    fi
  } >"$DIR/$name.yml"
  echo "127.0.0.1:$port" >"$DIR/$name.addr"
}

start_one() { # name expected-status [auth]
  local name=$1 status=$2
  if running_pidfile "$DIR/$name.pid" && healthy "$name" "$status"; then return 0; fi
  stop_pidfile "$DIR/$name.pid"
  write_config "$name" "$(free_port)" "${3:-}"
  docker-registry serve "$DIR/$name.yml" >"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
  wait_for 30 "registry $name" healthy "$name" "$status" || {
    tail -20 "$DIR/$name.log" >&2
    die "registry $name did not start (log: $DIR/$name.log)"
  }
}

start() {
  ensure_debs docker-registry apache2-utils
  if [[ ! -f $DIR/password ]]; then
    python3 -c 'import secrets; print(secrets.token_urlsafe(18))' >"$DIR/password"
    chmod 600 "$DIR/password"
  fi
  htpasswd -Bbc "$DIR/htpasswd" wasmflow "$(cat "$DIR/password")" 2>/dev/null
  start_one plain 200
  start_one auth 401 auth
  log "registries ready: plain $(cat "$DIR/plain.addr"), auth $(cat "$DIR/auth.addr")"
}

stop() {
  stop_pidfile "$DIR/plain.pid"
  stop_pidfile "$DIR/auth.pid"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status)
    if healthy plain 200 && healthy auth 401; then echo running; else echo stopped; exit 1; fi
    ;;
  env)
    echo "WASMFLOW_REGISTRY=$(cat "$DIR/plain.addr")"
    echo "WASMFLOW_REGISTRY_AUTH=$(cat "$DIR/auth.addr")"
    echo "WASMFLOW_REGISTRY_USER=wasmflow"
    echo "WASMFLOW_REGISTRY_PASSWORD=$(cat "$DIR/password")"
    ;;
  *) die "usage: $0 start|stop|status|env [--dir DIR]" ;;
esac
