#!/usr/bin/env bash
# A real Kubernetes API server for the tests: etcd + kube-apiserver (built by hack/build-kube.sh) on loopback,
# random ports, TLS with a CA written here, static-token authentication and RBAC authorization.
# Two identities: "admin" (system:masters) and "limited" (no groups: RBAC refuses it everything by default).
# There is no kubelet, scheduler or controller-manager: objects are stored and validated, never run.
#
# usage: hack/kube-env.sh start|stop|status|env [--dir DIR]
#   start   idempotent; waits for /readyz; writes DIR/kubeconfig and DIR/kubeconfig-limited
#   env     prints KUBECONFIG=... lines: eval "$(hack/kube-env.sh env)"
set -euo pipefail
source "$(dirname "$0")/lib.sh"

cmd=${1:-}
shift || true
DIR="$WASMFLOW_STATE/kube"
while (($#)); do
  case $1 in
    --dir) DIR=$2; shift 2 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

healthy() {
  [[ -f $DIR/server ]] || return 1
  curl -sf --cacert "$DIR/ca.crt" -H "Authorization: Bearer $(cat "$DIR/admin.token")" "$(cat "$DIR/server")/readyz" >/dev/null
}

write_pki() {
  [[ -f $DIR/ca.crt ]] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=wasmflow-test-ca" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$DIR/apiserver.key" -out "$DIR/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' >"$DIR/san.ext"
  openssl x509 -req -in "$DIR/apiserver.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 3650 -extfile "$DIR/san.ext" -out "$DIR/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
  openssl rsa -in "$DIR/sa.key" -pubout -out "$DIR/sa.pub" 2>/dev/null
  python3 -c 'import secrets; print(secrets.token_hex(24))' >"$DIR/admin.token"
  python3 -c 'import secrets; print(secrets.token_hex(24))' >"$DIR/limited.token"
  chmod 600 "$DIR"/*.key "$DIR"/*.token
  {
    echo "$(cat "$DIR/admin.token"),admin,admin-uid,\"system:masters\""
    echo "$(cat "$DIR/limited.token"),limited,limited-uid"
  } >"$DIR/tokens.csv"
  chmod 600 "$DIR/tokens.csv"
}

write_kubeconfig() { # name token-file
  cat >"$DIR/$1" <<KC
apiVersion: v1
kind: Config
clusters:
  - name: wasmflow-test
    cluster:
      server: $(cat "$DIR/server")
      certificate-authority: $DIR/ca.crt
users:
  - name: $3
    user:
      token: $(cat "$DIR/$2")
contexts:
  - name: wasmflow-test
    context: {cluster: wasmflow-test, user: $3}
current-context: wasmflow-test
KC
  chmod 600 "$DIR/$1"
}

start() {
  if running_pidfile "$DIR/apiserver.pid" && healthy; then
    return 0
  fi
  stop
  local etcd apiserver
  etcd=$("$HACK_DIR/build-kube.sh" --print-path etcd)
  apiserver=$("$HACK_DIR/build-kube.sh" --print-path kube-apiserver)
  write_pki
  local etcd_port peer_port api_port
  etcd_port=$(free_port)
  peer_port=$(free_port)
  api_port=$(free_port)
  rm -rf "$DIR/etcd-data"
  "$etcd" --name wasmflow-test --data-dir "$DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "wasmflow-test=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level warn \
    >"$DIR/etcd.log" 2>&1 &
  echo $! >"$DIR/etcd.pid"
  wait_for 30 "etcd on :$etcd_port" curl -sf "http://127.0.0.1:$etcd_port/health" || {
    tail -20 "$DIR/etcd.log" >&2
    die "etcd did not become healthy (log: $DIR/etcd.log)"
  }
  echo "https://127.0.0.1:$api_port" >"$DIR/server"
  "$apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$DIR/apiserver.crt" --tls-private-key-file "$DIR/apiserver.key" --client-ca-file "$DIR/ca.crt" \
    --token-auth-file "$DIR/tokens.csv" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$DIR/sa.pub" \
    --service-account-signing-key-file "$DIR/sa.key" --service-cluster-ip-range 10.96.0.0/16 \
    --allow-privileged=true --enable-priority-and-fairness=false --storage-media-type application/json \
    --cert-dir "$DIR/certs" >"$DIR/apiserver.log" 2>&1 &
  echo $! >"$DIR/apiserver.pid"
  wait_for 90 "kube-apiserver on :$api_port" healthy || {
    tail -20 "$DIR/apiserver.log" >&2
    die "kube-apiserver did not become ready (log: $DIR/apiserver.log)"
  }
  write_kubeconfig kubeconfig admin.token admin
  write_kubeconfig kubeconfig-limited limited.token limited
  log "kube-apiserver ready at $(cat "$DIR/server") (KUBECONFIG=$DIR/kubeconfig)"
}

stop() {
  stop_pidfile "$DIR/apiserver.pid"
  stop_pidfile "$DIR/etcd.pid"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status)
    if healthy; then echo "running: $(cat "$DIR/server")"; else echo "stopped"; exit 1; fi
    ;;
  env)
    healthy || die "not running; run: hack/kube-env.sh start${DIR:+ --dir $DIR}"
    echo "KUBECONFIG=$DIR/kubeconfig"
    echo "WASMFLOW_KUBECONFIG_LIMITED=$DIR/kubeconfig-limited"
    echo "WASMFLOW_KUBE_SERVER=$(cat "$DIR/server")"
    ;;
  *) die "usage: $0 start|stop|status|env [--dir DIR]" ;;
esac
