#!/usr/bin/env bash
# A real MQTT v5 broker for the tests (Debian's mosquitto 2), on loopback, with three listeners:
#   plain  anonymous                      (WASMFLOW_MQTT)
#   auth   username/password only         (WASMFLOW_MQTT_AUTH, user "wasmflow", random password)
#   tls    TLS with a CA written here     (WASMFLOW_MQTT_TLS, WASMFLOW_MQTT_CA), anonymous
# Persistence is on, so persistent sessions survive `restart`. Shared subscriptions ($share/...) are on by default.
# usage: hack/mosquitto.sh start|stop|restart|status|env [--dir DIR]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

cmd=${1:-}
shift || true
DIR="$WASMFLOW_STATE/mosquitto"
while (($#)); do
  case $1 in
    --dir) DIR=$2; shift 2 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

healthy() {
  [[ -f $DIR/ports ]] || return 1
  local port
  port=$(head -1 "$DIR/ports")
  # A real MQTT round trip: -E exits once the subscription is acknowledged.
  mosquitto_sub -h 127.0.0.1 -p "$port" -t "wasmflow/readiness" -E -V mqttv5 -W 2 >/dev/null 2>&1
}

write_config() {
  if [[ ! -f $DIR/ca.crt ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=wasmflow-test-mqtt-ca" \
      -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$DIR/server.key" -out "$DIR/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$DIR/san.ext"
    openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial -days 3650 \
      -extfile "$DIR/san.ext" -out "$DIR/server.crt" 2>/dev/null
    chmod 644 "$DIR/server.key"
  fi
  if [[ ! -f $DIR/password ]]; then
    python3 -c 'import secrets; print(secrets.token_urlsafe(18))' >"$DIR/password"
    chmod 600 "$DIR/password"
    mosquitto_passwd -c -b "$DIR/passwd" wasmflow "$(cat "$DIR/password")" 2>/dev/null
    chmod 644 "$DIR/passwd"
  fi
  if [[ ! -f $DIR/ports ]]; then
    printf '%s\n%s\n%s\n' "$(free_port)" "$(free_port)" "$(free_port)" >"$DIR/ports"
  fi
  local plain auth tls
  {
    read -r plain
    read -r auth
    read -r tls
  } <"$DIR/ports"
  mkdir -p "$DIR/data"
  cat >"$DIR/mosquitto.conf" <<CONF
per_listener_settings true
# Run as whoever started us (mosquitto drops root to "mosquitto", which could not read this state directory).
user $(id -un)
persistence true
persistence_location $DIR/data/
autosave_interval 1
log_dest file $DIR/mosquitto.log
log_type error
log_type warning
max_queued_messages 100000
max_inflight_messages 0

listener $plain 127.0.0.1
allow_anonymous true

listener $auth 127.0.0.1
allow_anonymous false
password_file $DIR/passwd

listener $tls 127.0.0.1
allow_anonymous true
cafile $DIR/ca.crt
certfile $DIR/server.crt
keyfile $DIR/server.key
CONF
}

start() {
  ensure_debs mosquitto mosquitto-clients openssl
  if running_pidfile "$DIR/mosquitto.pid" && healthy; then return 0; fi
  stop_pidfile "$DIR/mosquitto.pid"
  write_config
  mosquitto -c "$DIR/mosquitto.conf" >>"$DIR/stdout.log" 2>&1 &
  echo $! >"$DIR/mosquitto.pid"
  wait_for 30 "mosquitto" healthy || {
    tail -20 "$DIR/mosquitto.log" "$DIR/stdout.log" >&2 || true
    die "mosquitto did not start (logs in $DIR)"
  }
  log "mosquitto ready on 127.0.0.1:$(head -1 "$DIR/ports")"
}

stop() { stop_pidfile "$DIR/mosquitto.pid"; }

case $cmd in
  start) start ;;
  stop) stop ;;
  restart) stop && start ;;
  status) if healthy; then echo running; else echo stopped; exit 1; fi ;;
  env)
    {
      read -r plain
      read -r auth
      read -r tls
    } <"$DIR/ports"
    echo "WASMFLOW_MQTT=127.0.0.1:$plain"
    echo "WASMFLOW_MQTT_AUTH=127.0.0.1:$auth"
    echo "WASMFLOW_MQTT_USER=wasmflow"
    echo "WASMFLOW_MQTT_PASSWORD=$(cat "$DIR/password")"
    echo "WASMFLOW_MQTT_TLS=127.0.0.1:$tls"
    echo "WASMFLOW_MQTT_CA=$DIR/ca.crt"
    ;;
  *) die "usage: $0 start|stop|restart|status|env [--dir DIR]" ;;
esac
