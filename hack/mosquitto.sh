#!/usr/bin/env bash
# A real MQTT v5 broker for the tests (Debian's mosquitto 2), on loopback, with four listeners:
#   plain  anonymous                          WASMFLOW_MQTT
#   auth   username/password only             WASMFLOW_MQTT_AUTH, WASMFLOW_MQTT_USER/PASSWORD (random password);
#          that user may use every topic but forbidden/# (an ACL, so refusals are testable)
#   tls    TLS, CA written here, anonymous    WASMFLOW_MQTT_TLS, WASMFLOW_MQTT_CA
#   mtls   TLS + client certificate required  WASMFLOW_MQTT_MTLS, WASMFLOW_MQTT_CLIENT_CERT/KEY (same CA)
# Persistence is on, so persistent sessions survive `restart`. Shared subscriptions ($share/...) are on by default.
# Ports are random but kept across restarts, so clients reconnect to the same address.
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
[[ $cmd == start || $cmd == restart ]] && mkdir -p "$DIR"
[[ -d $DIR ]] && DIR=$(cd "$DIR" && pwd)

# read_ports: set plain, auth, tls, mtls from the ports file (false if it is missing or incomplete).
read_ports() {
  [[ -f $DIR/ports ]] || return 1
  {
    read -r plain
    read -r auth
    read -r tls
    read -r mtls
  } <"$DIR/ports" || true
  [[ -n ${plain:-} && -n ${auth:-} && -n ${tls:-} && -n ${mtls:-} ]]
}

# A real MQTT v5 session on every listener: -E exits once the subscription is acknowledged.
healthy() {
  local plain auth tls mtls
  read_ports || return 1
  local sub=(mosquitto_sub -h 127.0.0.1 -t wasmflow/readiness -E -V mqttv5 -W 2)
  "${sub[@]}" -p "$plain" >/dev/null 2>&1 &&
    "${sub[@]}" -p "$auth" -u wasmflow -P "$(cat "$DIR/password")" >/dev/null 2>&1 &&
    "${sub[@]}" -p "$tls" --cafile "$DIR/ca.crt" >/dev/null 2>&1 &&
    "${sub[@]}" -p "$mtls" --cafile "$DIR/ca.crt" --cert "$DIR/client.crt" --key "$DIR/client.key" >/dev/null 2>&1
}

# ours: the PID file names the mosquitto started with this directory's config (never signal anything else).
ours() { pidfile_runs "$DIR/mosquitto.pid" "$DIR/mosquitto.conf"; }

# port_taken PORT: something listens there. SO_REUSEADDR as mosquitto binds: our own closed connections in
# TIME_WAIT must not count.
port_taken() {
  ! python3 -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

# Four distinct free ports, kept across restarts; chosen again only when one was taken while the broker was down
# (a state directory reused from an earlier run).
choose_ports() {
  local plain auth tls mtls p
  if read_ports && ! port_taken "$plain" && ! port_taken "$auth" && ! port_taken "$tls" && ! port_taken "$mtls"; then
    return 0
  fi
  [[ -f $DIR/ports ]] && log "a recorded port is taken (or the state is from an older script): choosing new ports"
  local ports=()
  while ((${#ports[@]} < 4)); do
    p=$(free_port)
    [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
  done
  printf '%s\n' "${ports[@]}" >"$DIR/ports"
}

# P-256 keys: as good for a test CA as RSA, and generated in milliseconds instead of a good part of a second.
KEY=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

# sign NAME SUBJECT [EXTFILE]: a key and a certificate signed by the test CA.
sign() {
  local name=$1 subject=$2 ext=${3:-}
  openssl req "${KEY[@]}" -subj "$subject" -keyout "$DIR/$name.key" -out "$DIR/$name.csr" 2>/dev/null
  openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial -days 3650 \
    ${ext:+-extfile "$ext"} -out "$DIR/$name.crt" 2>/dev/null
  rm -f "$DIR/$name.csr"
  chmod 644 "$DIR/$name.key" # test material, read by the tests as whoever runs them
}

write_config() {
  if [[ ! -f $DIR/ca.crt ]]; then
    openssl req -x509 "${KEY[@]}" -days 3650 -subj "/CN=wasmflow-test-mqtt-ca" \
      -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
    rm -f "$DIR/server.crt" "$DIR/client.crt"
  fi
  if [[ ! -f $DIR/server.crt ]]; then
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$DIR/san.ext"
    sign server "/CN=localhost" "$DIR/san.ext"
  fi
  [[ -f $DIR/client.crt ]] || sign client "/CN=wasmflow-client"
  if [[ ! -f $DIR/password ]]; then
    python3 -c 'import secrets; print(secrets.token_urlsafe(18))' >"$DIR/password"
    chmod 600 "$DIR/password"
    mosquitto_passwd -c -b "$DIR/passwd" wasmflow "$(cat "$DIR/password")" 2>/dev/null
    chmod 644 "$DIR/passwd"
  fi
  # On the auth listener "wasmflow" may use every topic except forbidden/#, so refusals are testable too.
  printf 'user wasmflow\ntopic deny forbidden/#\ntopic readwrite #\n' >"$DIR/acl"
  choose_ports
  local plain auth tls mtls
  read_ports
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
acl_file $DIR/acl

listener $tls 127.0.0.1
allow_anonymous true
cafile $DIR/ca.crt
certfile $DIR/server.crt
keyfile $DIR/server.key

listener $mtls 127.0.0.1
allow_anonymous false
cafile $DIR/ca.crt
certfile $DIR/server.crt
keyfile $DIR/server.key
require_certificate true
use_identity_as_username true
CONF
}

start() {
  ensure_debs mosquitto mosquitto-clients openssl
  if ours && healthy; then return 0; fi
  stop
  write_config
  start_daemon "$DIR/mosquitto.pid" "$DIR/stdout.log" mosquitto -c "$DIR/mosquitto.conf"
  WAIT_FOR_PID=$(cat "$DIR/mosquitto.pid") wait_for 30 "mosquitto" healthy || {
    tail -20 "$DIR/mosquitto.log" "$DIR/stdout.log" >&2 || true
    die "mosquitto did not start (logs in $DIR)"
  }
  log "mosquitto ready on 127.0.0.1:$(head -1 "$DIR/ports")"
}

stop() {
  if ours; then stop_pidfile "$DIR/mosquitto.pid"; else rm -f "$DIR/mosquitto.pid"; fi
}

# Two runs for one directory (two test sessions, a stop during a start) take turns.
case $cmd in
  start | stop | restart) take_lock "$DIR/.lock" 120 || die "timed out waiting for $DIR/.lock" ;;
esac

case $cmd in
  start) start ;;
  stop) stop ;;
  restart) stop && start ;;
  status) if ours && healthy; then echo running; else echo stopped; exit 1; fi ;;
  env)
    read_ports || die "no broker state in $DIR: run '$0 start --dir $DIR' first"
    echo "WASMFLOW_MQTT=127.0.0.1:$plain"
    echo "WASMFLOW_MQTT_AUTH=127.0.0.1:$auth"
    echo "WASMFLOW_MQTT_USER=wasmflow"
    echo "WASMFLOW_MQTT_PASSWORD=$(cat "$DIR/password")"
    echo "WASMFLOW_MQTT_TLS=127.0.0.1:$tls"
    echo "WASMFLOW_MQTT_CA=$DIR/ca.crt"
    echo "WASMFLOW_MQTT_MTLS=127.0.0.1:$mtls"
    echo "WASMFLOW_MQTT_CLIENT_CERT=$DIR/client.crt"
    echo "WASMFLOW_MQTT_CLIENT_KEY=$DIR/client.key"
    ;;
  *) die "usage: $0 start|stop|restart|status|env [--dir DIR]" ;;
esac
