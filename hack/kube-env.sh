#!/usr/bin/env bash
# A real Kubernetes API server for the tests: etcd + kube-apiserver (built from their Go modules by
# hack/build-kube.sh) on 127.0.0.1 with random free ports, TLS from a CA written here, static-token authentication and
# RBAC authorization. Two identities:
#   admin    group system:masters (everything)        DIR/kubeconfig
#   limited  no groups (RBAC refuses it by default)    DIR/kubeconfig-limited
# There is no kubelet, scheduler or controller-manager here (hack/node.sh adds them, for the node tests): objects
# are stored, validated (CRDs with CEL rules too) and watched, never run; namespaces stay Terminating once deleted; no
# "default" ServiceAccount is created. Nothing maintains the "kubernetes" Service's endpoints (kube-apiserver >= 1.37
# refuses a loopback advertise address for its endpoint reconciler, so the reconciler is off). For a kubelet, the
# server reaches nodes at their InternalIP with a client certificate in system:masters (DIR/kubelet-client.crt).
# Every start (unless already running and ready) begins with an empty etcd; the CA, keys and tokens are kept.
#
# usage: hack/kube-env.sh start|stop|restart-apiserver|status|env [--dir DIR]    (DIR default: $WASMFLOW_STATE/kube)
#   start   idempotent (a no-op when running and ready); returns once /readyz answers 200
#   restart-apiserver  stop kube-apiserver and start it again on the same port against the same etcd (objects
#           and resourceVersions kept, every watch and connection broken): the fault a controller must survive
#   stop    TERM, then KILL after 15 s; only processes started for DIR; safe to repeat
#   status  prints "running: URL" (exit 0) or "stopped" (exit 1)
#   env     KEY=VALUE lines and an export line: eval "$(hack/kube-env.sh env)"; kubectl get ns
# Logs: DIR/etcd.log, DIR/apiserver.log. Readiness timeout: KUBE_READY_TIMEOUT (90 s).
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

cmd=${1:-}
shift || true
DIR="$WASMFLOW_STATE/kube"
while (($#)); do
  case $1 in
    --dir) DIR=${2:?--dir needs a directory}; shift 2 ;;
    --dir=*) DIR=${1#--dir=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
READY_TIMEOUT=${KUBE_READY_TIMEOUT:-90}

# ours NAME: DIR/NAME.pid is a live process started for this directory (its command line names DIR).
ours() { pidfile_runs "$DIR/$1.pid" "$DIR/"; }

readyz() {
  [[ -f $DIR/server ]] || return 1
  curl -sf --max-time 5 --cacert "$DIR/ca.crt" -H "Authorization: Bearer $(cat "$DIR/admin.token")" \
    "$(cat "$DIR/server")/readyz" >/dev/null
}

healthy() { ours apiserver && ours etcd && readyz; }

# The CA, serving certificate, service-account key pair and tokens: written once, kept across restarts.
write_pki() {
  [[ -f $DIR/pki.done ]] && return 0
  local quiet=(-quiet) # openssl 3 only
  openssl req -help 2>&1 | grep -q -- -quiet || quiet=()
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=wasmflow-test-ca" "${quiet[@]}" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" "${quiet[@]}" \
    -keyout "$DIR/apiserver.key" -out "$DIR/apiserver.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc" \
    "extendedKeyUsage=serverAuth" >"$DIR/apiserver.ext"
  openssl x509 -req -in "$DIR/apiserver.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 3650 -extfile "$DIR/apiserver.ext" -out "$DIR/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
  openssl rsa -in "$DIR/sa.key" -pubout -out "$DIR/sa.pub" 2>/dev/null
  python3 -c 'import secrets; print(secrets.token_hex(24))' >"$DIR/admin.token"
  python3 -c 'import secrets; print(secrets.token_hex(24))' >"$DIR/limited.token"
  # token-auth-file: token,user,uid[,"group1,group2"]
  {
    echo "$(cat "$DIR/admin.token"),admin,wasmflow-admin,\"system:masters\""
    echo "$(cat "$DIR/limited.token"),limited,wasmflow-limited"
  } >"$DIR/tokens.csv"
  chmod 600 "$DIR"/*.key "$DIR"/*.token "$DIR/tokens.csv"
  touch "$DIR/pki.done"
}

# The client certificate the API server shows a kubelet (logs, exec, port-forward): in system:masters, so a kubelet
# that authorizes by webhook (hack/node.sh) allows it. Written once, also into a directory made before it existed.
write_kubelet_client_cert() {
  [[ -f $DIR/kubelet-client.crt ]] && return 0
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
    -keyout "$DIR/kubelet-client.key" -out "$DIR/kubelet-client.csr" 2>/dev/null
  printf '%s\n' "extendedKeyUsage=clientAuth" >"$DIR/kubelet-client.ext"
  openssl x509 -req -in "$DIR/kubelet-client.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 3650 -extfile "$DIR/kubelet-client.ext" -out "$DIR/kubelet-client.crt.tmp" 2>/dev/null
  chmod 600 "$DIR/kubelet-client.key"
  mv -f "$DIR/kubelet-client.crt.tmp" "$DIR/kubelet-client.crt"
}

# write_kubeconfig FILE USER: a kubeconfig for USER (token in DIR/USER.token), the CA inlined so it can be copied.
write_kubeconfig() {
  local file=$DIR/$1 user=$2
  cat >"$file.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
  - name: wasmflow-test
    cluster:
      server: $(cat "$DIR/server")
      certificate-authority-data: $(base64 -w0 <"$DIR/ca.crt")
users:
  - name: $user
    user:
      token: $(cat "$DIR/$user.token")
contexts:
  - name: wasmflow-test-$user
    context: {cluster: wasmflow-test, user: $user, namespace: default}
current-context: wasmflow-test-$user
KC
  chmod 600 "$file.tmp"
  mv -f "$file.tmp" "$file"
}

# port_conflict LOG: the process died because a port we were given was taken meanwhile (worth a retry).
port_conflict() { grep -qi 'address already in use' "$1" 2>/dev/null; }

start_etcd() {
  local client=$1 peer=$2
  rm -rf "$DIR/etcd-data"
  : >"$DIR/etcd.log"
  start_daemon "$DIR/etcd.pid" "$DIR/etcd.log" "$ETCD" --name wasmflow-test --data-dir "$DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "wasmflow-test=http://127.0.0.1:$peer" \
    --unsafe-no-fsync --log-level warn
  WAIT_FOR_PID=$(cat "$DIR/etcd.pid") wait_for 30 "etcd on 127.0.0.1:$client" \
    curl -sf --max-time 2 "http://127.0.0.1:$client/health"
}

start_apiserver() {
  local etcd_port=$1 port=$2
  echo "https://127.0.0.1:$port" >"$DIR/server"
  : >"$DIR/apiserver.log"
  start_daemon "$DIR/apiserver.pid" "$DIR/apiserver.log" "$APISERVER" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
    --tls-cert-file "$DIR/apiserver.crt" --tls-private-key-file "$DIR/apiserver.key" --client-ca-file "$DIR/ca.crt" \
    --token-auth-file "$DIR/tokens.csv" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$DIR/sa.pub" \
    --service-account-signing-key-file "$DIR/sa.key" --service-cluster-ip-range 10.0.0.0/24 \
    --allow-privileged=true --enable-priority-and-fairness=false --profiling=false \
    --endpoint-reconciler-type none \
    --kubelet-client-certificate "$DIR/kubelet-client.crt" --kubelet-client-key "$DIR/kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP
  WAIT_FOR_PID=$(cat "$DIR/apiserver.pid") wait_for "$READY_TIMEOUT" "kube-apiserver /readyz on :$port" readyz
}

start() {
  if healthy; then
    log "already running at $(cat "$DIR/server")"
    return 0
  fi
  stop
  ETCD=$("$HACK_DIR/build-kube.sh" --print-path etcd)
  APISERVER=$("$HACK_DIR/build-kube.sh" --print-path kube-apiserver)
  write_pki
  write_kubelet_client_cert
  local attempt etcd_port
  for attempt in 1 2 3; do
    etcd_port=$(free_port)
    start_etcd "$etcd_port" "$(free_port)" && break
    stop_pidfile "$DIR/etcd.pid"
    port_conflict "$DIR/etcd.log" && ((attempt < 3)) && { log "etcd lost its port to someone else: retrying"; continue; }
    tail -20 "$DIR/etcd.log" >&2
    die "etcd did not become healthy (log: $DIR/etcd.log)"
  done
  for attempt in 1 2 3; do
    start_apiserver "$etcd_port" "$(free_port)" && break
    stop_pidfile "$DIR/apiserver.pid" 15
    port_conflict "$DIR/apiserver.log" && ((attempt < 3)) && { log "kube-apiserver lost its port: retrying"; continue; }
    tail -20 "$DIR/apiserver.log" >&2
    stop_pidfile "$DIR/etcd.pid"
    die "kube-apiserver did not become ready (log: $DIR/apiserver.log)"
  done
  "$APISERVER" --version | awk '{print $2}' >"$DIR/version"
  write_kubeconfig kubeconfig admin
  write_kubeconfig kubeconfig-limited limited
  log "kube-apiserver $(cat "$DIR/version") ready at $(cat "$DIR/server") (KUBECONFIG=$DIR/kubeconfig)"
}

# stop_ours NAME: stop DIR/NAME.pid if it is one of ours; a stale PID file (number reused elsewhere) is just removed.
stop_ours() {
  if ours "$1"; then stop_pidfile "$DIR/$1.pid" 15; else rm -f "$DIR/$1.pid"; fi
}

stop() {
  stop_ours apiserver
  stop_ours etcd
}

restart_apiserver() {
  healthy || die "not running; run: $0 start --dir $DIR"
  APISERVER=$("$HACK_DIR/build-kube.sh" --print-path kube-apiserver)
  local server port etcd_port
  server=$(cat "$DIR/server")
  port=${server##*:}
  # The etcd it was started against, from its own command line (the only place start recorded it).
  etcd_port=$(tr '\0' '\n' <"/proc/$(cat "$DIR/apiserver.pid")/cmdline" | sed -n '/^--etcd-servers$/{n;s/.*://p;}')
  [[ -n $etcd_port ]] || die "cannot tell which etcd the running kube-apiserver uses"
  stop_pidfile "$DIR/apiserver.pid" 15
  if ! start_apiserver "$etcd_port" "$port"; then
    tail -20 "$DIR/apiserver.log" >&2
    die "kube-apiserver did not come back on :$port (log: $DIR/apiserver.log)"
  fi
  log "kube-apiserver restarted at $(cat "$DIR/server")"
}

main() {
  case $cmd in
    start)
      # Two starts for one directory (or a stop during a start) take turns; a first build can take minutes.
      take_lock "$DIR/.lock" 3600 || die "timed out waiting for $DIR/.lock"
      start
      ;;
    stop)
      take_lock "$DIR/.lock" 3600 || die "timed out waiting for $DIR/.lock"
      stop
      ;;
    restart-apiserver)
      take_lock "$DIR/.lock" 3600 || die "timed out waiting for $DIR/.lock"
      restart_apiserver
      ;;
    status)
      if healthy; then echo "running: $(cat "$DIR/server")"; else echo "stopped"; return 1; fi
      ;;
    env)
      healthy || die "not running; run: $0 start --dir $DIR"
      echo "KUBECONFIG=$DIR/kubeconfig"
      echo "WASMFLOW_KUBECONFIG_LIMITED=$DIR/kubeconfig-limited"
      echo "WASMFLOW_KUBE_SERVER=$(cat "$DIR/server")"
      echo "WASMFLOW_KUBE_CA=$DIR/ca.crt"
      echo "WASMFLOW_KUBE_ADMIN_TOKEN_FILE=$DIR/admin.token"
      echo "WASMFLOW_KUBE_LIMITED_TOKEN_FILE=$DIR/limited.token"
      echo "WASMFLOW_KUBE_VERSION=$(cat "$DIR/version")"
      echo "export KUBECONFIG WASMFLOW_KUBECONFIG_LIMITED WASMFLOW_KUBE_SERVER WASMFLOW_KUBE_CA" \
        "WASMFLOW_KUBE_ADMIN_TOKEN_FILE WASMFLOW_KUBE_LIMITED_TOKEN_FILE WASMFLOW_KUBE_VERSION"
      ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      return 2
      ;;
  esac
}

main; exit
