#!/usr/bin/env bash
# Real OCI registries for the tests: Debian's docker-registry (CNCF distribution 2.8), on loopback, random ports:
#   plain  anonymous read/write, plain HTTP                        WASMFLOW_REGISTRY
#   auth   htpasswd basic auth, plain HTTP (user "wasmflow")       WASMFLOW_REGISTRY_AUTH, _USER, _PASSWORD
#   tls    anonymous, HTTPS with a certificate of a test CA        WASMFLOW_REGISTRY_TLS, WASMFLOW_REGISTRY_CA
# and with --token, the token world (bearer tokens, what Docker Hub, GHCR and ACR use), all HTTPS but one:
#   token-server        the distribution project's token service (hack/build-kube.sh token-server), HTTPS, the same
#                       htpasswd user; signs JWTs with DIR/token-signing.key     WASMFLOW_TOKEN_SERVER
#   token-server-plain  the same service on plain HTTP                          WASMFLOW_TOKEN_SERVER_PLAIN
#   token               a registry with `auth: token` whose realm is token-server  WASMFLOW_TOKEN_REGISTRY
#   token-plainrealm    a registry whose realm is token-server-plain (a realm a client must refuse)
#                                                                                WASMFLOW_TOKEN_REGISTRY_PLAIN_REALM
# The token service grants a user the repositories under its name ("wasmflow/..."), issues refresh tokens
# (offline_token=true) and takes them back in the OAuth2 refresh-token grant (POST); its tokens last 15 minutes.
# All with storage.delete.enabled. The test CA (DIR/ca.crt, P-256, made here with openssl) signs the server
# certificate for 127.0.0.1 and localhost; clients trust it only when given the CA file. The password is random, written to DIR/password (mode 600); the bcrypt htpasswd
# file is made by `htpasswd -B` from apache2-utils (distribution only reads bcrypt entries; Python's bcrypt module is
# not installed and its crypt module is deprecated, so apache2-utils is the lightest real tool).
# Readiness is GET /v2/ answering 200 (plain, tls: verified against the CA) or 401 (auth). Ports are kept across restarts unless taken meanwhile.
# usage: hack/registry.sh start|stop|restart|status|env [--dir DIR] [--token]   (DIR: $WASMFLOW_STATE/registry)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

cmd=${1:-}
shift || true
DIR="$WASMFLOW_STATE/registry"
TOKEN=0
while (($#)); do
  case $1 in
    --dir) DIR=$2; shift 2 ;;
    --token) TOKEN=1; shift ;;
    *) die "unknown argument '$1'" ;;
  esac
done
[[ $cmd == start || $cmd == restart ]] && mkdir -p "$DIR"
[[ -d $DIR ]] && DIR=$(cd "$DIR" && pwd)
USER_NAME=wasmflow
INSTANCES=(plain auth tls)
# Token servers first: the token registries' configurations name their addresses.
TOKEN_INSTANCES=(token-server token-server-plain token token-plainrealm)
ISSUER=wasmflow-test-token-issuer
SERVICE=wasmflow-test-registry
((TOKEN)) && INSTANCES+=("${TOKEN_INSTANCES[@]}")

is_token_server() { [[ $1 == token-server || $1 == token-server-plain ]]; }

expected_status() { [[ $1 == plain || $1 == tls ]] && echo 200 || echo 401; }

healthy() { # name
  [[ -f $DIR/$1.addr ]] || return 1
  local code path=/v2/
  is_token_server "$1" && path=/token/
  if [[ $1 == auth || $1 == plain || $1 == token-server-plain ]]; then
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$(cat "$DIR/$1.addr")$path") || return 1
  else
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' --cacert "$DIR/ca.crt" "https://$(cat "$DIR/$1.addr")$path") ||
      return 1
  fi
  [[ $code == "$(expected_status "$1")" ]]
}

# ours NAME: the PID file names the process serving this directory's NAME (never signal anything else): a registry
# by its config file, a token server by its realm, which is its state path.
ours() {
  if is_token_server "$1"; then pidfile_runs "$DIR/$1.pid" "-realm=$DIR/$1"; else pidfile_runs "$DIR/$1.pid" "$DIR/$1.yml"; fi
}

port_taken() {
  ! python3 -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

write_config() { # name port
  local name=$1 port=$2
  mkdir -p "$DIR/$name-data"
  {
    echo "version: 0.1"
    echo "log: {level: warn, accesslog: {disabled: true}}"
    echo "storage:"
    echo "  filesystem: {rootdirectory: $DIR/$name-data}"
    echo "  delete: {enabled: true}"
    echo "  maintenance: {uploadpurging: {enabled: false}}"
    echo "http:"
    echo "  addr: 127.0.0.1:$port"
    echo "  secret: $(cat "$DIR/http-secret")" # upload state survives a restart (else random per start)
    echo "  headers: {X-Content-Type-Options: [nosniff]}"
    if [[ $name == tls || $name == token || $name == token-plainrealm ]]; then
      echo "  tls: {certificate: $DIR/server.crt, key: $DIR/server.key}"
    fi
    if [[ $name == auth ]]; then
      echo "auth:"
      echo "  htpasswd: {realm: wasmflow-test, path: $DIR/htpasswd}"
    fi
    if [[ $name == token ]]; then
      echo "auth:"
      echo "  token: {realm: https://$(cat "$DIR/token-server.addr")/token/, service: $SERVICE, issuer: $ISSUER,"
      echo "          rootcertbundle: $DIR/token-signing.crt}"
    fi
    if [[ $name == token-plainrealm ]]; then
      echo "auth:"
      echo "  token: {realm: http://$(cat "$DIR/token-server-plain.addr")/token/, service: $SERVICE, issuer: $ISSUER,"
      echo "          rootcertbundle: $DIR/token-signing.crt}"
    fi
  } >"$DIR/$name.yml"
  echo "127.0.0.1:$port" >"$DIR/$name.addr"
}

credentials() {
  if [[ ! -s $DIR/password ]]; then
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(18))' >"$DIR/password")
    rm -f "$DIR/htpasswd"
  fi
  [[ -s $DIR/http-secret ]] ||
    (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(16))' >"$DIR/http-secret")
  if [[ ! -s $DIR/htpasswd ]]; then
    # -i: the password from stdin, so it never shows in a process list.
    htpasswd -iBc "$DIR/htpasswd" "$USER_NAME" <"$DIR/password" 2>/dev/null
  fi
}

# P-256 keys: as good for a test CA as RSA, and generated in milliseconds.
KEY=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

# The token issuer's key: an EC key in the SEC1 PEM form the token service reads (libtrust), and the self-signed
# certificate the token registries trust it by (rootcertbundle; a token names its key by libtrust key ID).
signing_key() {
  if [[ ! -s $DIR/token-signing.key || ! -s $DIR/token-signing.crt ]]; then
    (umask 077 && openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/token-signing.key" 2>/dev/null)
    openssl req -x509 -new -key "$DIR/token-signing.key" -subj "/CN=$ISSUER" -days 3650 \
      -out "$DIR/token-signing.crt" 2>/dev/null
  fi
}

# certificates: the test CA and the server certificate it signs (kept across restarts; remade with a new CA).
certificates() {
  if [[ ! -s $DIR/ca.crt || ! -s $DIR/ca.key ]]; then
    openssl req -x509 "${KEY[@]}" -days 3650 -subj "/CN=wasmflow-test-registry-ca" \
      -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
    rm -f "$DIR/server.crt"
  fi
  if [[ ! -s $DIR/server.crt || ! -s $DIR/server.key ]]; then
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$DIR/san.ext"
    openssl req "${KEY[@]}" -subj "/CN=localhost" -keyout "$DIR/server.key" -out "$DIR/server.csr" 2>/dev/null
    openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial -days 3650 \
      -extfile "$DIR/san.ext" -out "$DIR/server.crt" 2>/dev/null
    rm -f "$DIR/server.csr"
    chmod 644 "$DIR/server.key" # test material, read by the registry as whoever runs the tests
  fi
}

start_one() { # name
  local name=$1 port attempt
  if ours "$name" && healthy "$name"; then return 0; fi
  stop_one "$name"
  for attempt in 1 2 3; do
    port=""
    if [[ -f $DIR/$name.addr ]]; then
      port=$(cut -d: -f2 "$DIR/$name.addr")
      port_taken "$port" && port=""
    fi
    [[ -n $port ]] || port=$(free_port)
    if is_token_server "$name"; then
      echo "127.0.0.1:$port" >"$DIR/$name.addr"
      local tls=()
      [[ $name == token-server ]] && tls=(-tlscert "$DIR/server.crt" -tlskey "$DIR/server.key")
      start_daemon "$DIR/$name.pid" "$DIR/$name.log" "$TOKEN_SERVER" -addr "127.0.0.1:$port" -realm="$DIR/$name" \
        -issuer "$ISSUER" -passwd "$DIR/htpasswd" -key "$DIR/token-signing.key" "${tls[@]}"
    else
      write_config "$name" "$port"
      start_daemon "$DIR/$name.pid" "$DIR/$name.log" docker-registry serve "$DIR/$name.yml"
    fi
    if WAIT_FOR_PID=$(cat "$DIR/$name.pid") wait_for 30 "registry $name" healthy "$name"; then
      return 0
    fi
    # Most likely another process took the port between free_port and the bind: try another one.
    log "registry $name did not come up on port $port (try $attempt of 3)"
    stop_one "$name"
    rm -f "$DIR/$name.addr"
  done
  tail -20 "$DIR/$name.log" >&2 || true
  die "registry $name did not start (log: $DIR/$name.log)"
}

stop_one() {
  if ours "$1"; then stop_pidfile "$DIR/$1.pid"; else rm -f "$DIR/$1.pid"; fi
}

start() {
  ensure_debs docker-registry apache2-utils curl openssl
  # Built (once, cached) before the lock: a first build takes a minute or two.
  ((TOKEN)) && TOKEN_SERVER=$("$HACK_DIR/build-kube.sh" --print-path token-server)
  take_lock "$DIR/.lock"
  credentials
  certificates
  ((TOKEN)) && signing_key
  local name
  for name in "${INSTANCES[@]}"; do start_one "$name"; done
  release_lock
  local token_world=""
  ((TOKEN)) && token_world="token $(cat "$DIR/token.addr") (token service $(cat "$DIR/token-server.addr")) "
  log "registries ready: plain $(cat "$DIR/plain.addr"), auth $(cat "$DIR/auth.addr"), tls $(cat "$DIR/tls.addr")" \
    "${token_world}(state in $DIR)"
}

stop() { # every instance this directory may run, token world or not
  [[ -d $DIR ]] || return 0
  local name
  for name in plain auth tls "${TOKEN_INSTANCES[@]}"; do stop_one "$name"; done
}

case $cmd in
  start) start ;;
  stop) stop ;;
  restart) stop && start ;;
  status)
    for name in "${INSTANCES[@]}"; do
      if ! ours "$name" || ! healthy "$name"; then echo stopped; exit 1; fi
    done
    echo running
    ;;
  env)
    [[ -f $DIR/plain.addr && -f $DIR/auth.addr && -f $DIR/tls.addr && -f $DIR/password && -f $DIR/ca.crt ]] ||
      die "no registry state in $DIR: run '$0 start --dir $DIR' first"
    echo "WASMFLOW_REGISTRY=$(cat "$DIR/plain.addr")"
    echo "WASMFLOW_REGISTRY_AUTH=$(cat "$DIR/auth.addr")"
    echo "WASMFLOW_REGISTRY_USER=$USER_NAME"
    echo "WASMFLOW_REGISTRY_PASSWORD=$(cat "$DIR/password")"
    echo "WASMFLOW_REGISTRY_TLS=$(cat "$DIR/tls.addr")"
    echo "WASMFLOW_REGISTRY_CA=$DIR/ca.crt"
    if ((TOKEN)); then
      for name in "${TOKEN_INSTANCES[@]}"; do
        [[ -f $DIR/$name.addr ]] || die "no token world in $DIR: run '$0 start --dir $DIR --token' first"
      done
      echo "WASMFLOW_TOKEN_SERVER=$(cat "$DIR/token-server.addr")"
      echo "WASMFLOW_TOKEN_SERVER_PLAIN=$(cat "$DIR/token-server-plain.addr")"
      echo "WASMFLOW_TOKEN_SERVER_PLAIN_LOG=$DIR/token-server-plain.log"
      echo "WASMFLOW_TOKEN_REGISTRY=$(cat "$DIR/token.addr")"
      echo "WASMFLOW_TOKEN_REGISTRY_PLAIN_REALM=$(cat "$DIR/token-plainrealm.addr")"
      echo "WASMFLOW_TOKEN_SERVICE=$SERVICE"
    fi
    ;;
  *) die "usage: $0 start|stop|restart|status|env [--dir DIR]" ;;
esac
