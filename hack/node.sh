#!/usr/bin/env bash
# One real Kubernetes node for the tests, joined to the API server of hack/kube-env.sh: kube-controller-manager and
# kube-scheduler (built from the Kubernetes Go modules at the pinned release by hack/build-kube.sh), containerd and
# runc (Debian packages), CNI bridge + host-local (Debian containernetworking-plugins) and a kubelet of the same
# release. Pods really run: in containers, on a bridge of their own, with logs the API server reads from the kubelet.
# Needs root (containers, cgroups, a bridge). Two images are built locally from Debian's static busybox (no registry
# is needed) and imported: the pod sandbox ("pause") image and a busybox image for tests (`env` prints both names).
#
# usage: hack/node.sh check|start|stop|status|env|import ARCHIVE|expose PORT... [--dir DIR] [--kube-dir KUBE_DIR]
#   DIR       the node's state (default: $WASMFLOW_STATE/node): containerd root/state/socket, kubelet root, pod
#             logs, certificates, CNI configuration and IPAM, logs (containerd.log, kubelet.log, controller-manager.log,
#             scheduler.log)
#   KUBE_DIR  the running API server's directory (default: $WASMFLOW_STATE/kube; start it with hack/kube-env.sh)
#   check   whether this machine can run the node (root, a memory cgroup of its own, cgroup v1 controllers, overlayfs,
#           the kubernetes Service's address free): every missing part named, exit 1; before any build
#   start   idempotent; returns once the Node is Ready (NODE_READY_TIMEOUT, 180 s)
#   stop    deletes the node's pods and the Node, stops every process it started, removes the cgroups, the bridge
#           and the mount namespace it made; safe to repeat
#   import  imports an image archive (OCI layout or docker-archive tar) into the node's containerd (namespace k8s.io)
#   expose  makes host services listening on 127.0.0.1:PORT reachable from pods at <the node's IP>:PORT (forwarders,
#           stopped with the node): the test MQTT broker and registry
#   env     KEY=VALUE lines and an export line
# Environment: WASMFLOW_NODE_NAME (wasmflow-node), WASMFLOW_NODE_BRIDGE (wfn<hash of DIR>), WASMFLOW_NODE_SUBNET
# (10.244.<from the hash of DIR>: the first three octets of the pods' /24; the bridge, the node's InternalIP, is .1).
#
# How this runs on these machines (small Firecracker VMs: cgroup v1 hierarchy with a cgroup2 "unified" mount, no
# systemd, no swap, root), and the errors met on the way:
# - kubelet v1.37 still has its cgroup v1 manager, but refuses to start on cgroup v1 by default (`failCgroupV1`
#   defaults to true: pkg/kubelet/apis/config/v1beta1/defaults.go); `failCgroupV1: false` lets it run, with a
#   "cgroup v1 support is deprecated" warning event. So the kubelet is the same release as the API server.
# - containerd is Debian's 1.6.20, which has no CRI RuntimeConfig: kubelet v1.37 falls back to its own `cgroupDriver`
#   (cmd/kubelet/app/server.go getCgroupDriverFromCRI; the fallback is announced to go in 1.38), so cgroupfs is set on
#   both sides. containerd's config keeps everything under DIR (root, state, socket, /opt plugin dir, network
#   namespaces with `netns_mounts_under_state_dir`, runc's state with its `Root`) and its streaming server on a
#   kernel-chosen loopback port.
# - cgroups: the test processes sit in a memory cgroup of their own (/process_api/<id>, see /proc/self/cgroup) and at
#   the root of every other hierarchy. The node's `cgroupRoot` is <that memory cgroup>/wasmflow-node-<hash of DIR>;
#   runc creates each container's cgroup below it in every v1 hierarchy (and the cgroup2 "unified" one, hybrid mode),
#   so this script creates that same path in each hierarchy first, records every level it created (DIR/cgroups), and
#   removes exactly those (and what runc left below them) on stop. Nothing that existed before is written to.
#   `cgroupsPerQOS` stays true: with false, kubelet gives pods an empty cgroup parent (podContainerManagerNoop) and
#   containerd falls back to /k8s.io/<id>, at the root of every hierarchy (seen on the first try, and removed). With it,
#   kubelet's kubepods/{burstable,besteffort}/pod<uid> tree is made below cgroupRoot; `enforceNodeAllocatable: []`.
# - runc failed every pod sandbox with "can't get final child's PID from pipe: EOF"; its log.json said
#   "nsexec: failed to update /proc/self/oom_score_adj: Permission denied" (the sandbox asks for -998). The processes
#   of these VMs lack CAP_SYS_RESOURCE (CapEff 000001fffeffffff: bit 24 clear), so no oom_score_adj may go below the
#   current 0. containerd's `restrict_oom_score_adj = true` clamps them to its own. (kubelet's own -999 and its
#   RLIMIT_NOFILE raise fail for the same reason; it logs them and runs on.)
# - kubelet changes host sysctls at start (vm.overcommit_memory=1, kernel.panic=10, kernel.panic_on_oops=1 ...:
#   setupKernelTunables), or with `protectKernelDefaults` refuses to start when they differ; the CNI bridge plugin sets
#   net.ipv4.ip_forward=1. None of that is wanted on a shared VM, so containerd, the kubelet and their children run in a
#   private mount namespace (held by a `tail -f` started with unshare) in which those /proc/sys files are covered by
#   bind-mounted files holding the values kubelet wants: the host's sysctls are never written. The same namespace keeps
#   every overlay, tmpfs and netns mount of the node private, and takes them away when its last process exits.
# - kubelet creates iptables chains on the host (KUBE-IPTABLES-HINT, KUBE-FIREWALL) unless `makeIPTablesUtilChains:
#   false`, which is set; the bridge has `ipMasq: false`, so no iptables rule is written either.
# - nodeIP can't be a loopback address (kubelet validateNodeIP), so the bridge is made here (not by the CNI plugin on
#   the first pod) with the pods' gateway address, and that is the node's InternalIP and the kubelet's listen address;
#   the API server reaches it there (kube-env.sh: --kubelet-preferred-address-types InternalIP and a client
#   certificate in system:masters, which the kubelet's webhook authorization allows).
# - Identities: client certificates signed by the API server's CA (KUBE_DIR/ca.key): system:kube-controller-manager
#   and system:kube-scheduler (bound by the default RBAC policy) and system:node:<name> in system:nodes, bound here to
#   the system:node ClusterRole (the test API server authorizes with RBAC only, no Node authorizer).
# - No registry is reachable: the sandbox image is built here and imported, and containerd never pulls it.
# - Pods reach the API server through the `kubernetes` Service as in any cluster (in-cluster config: its ClusterIP
#   10.0.0.1:443, already in the server certificate's SANs). There is no kube-proxy: its iptables, nftables and IPVS
#   modes all program the host's network namespace. Instead 10.0.0.1/32 is an address of the bridge, and a forwarder
#   (hack/node-forward.py, what kube-proxy's userspace mode did) listens there and carries each TLS connection, unread,
#   to the API server on loopback. Only that one Service has a ClusterIP that works; other Services are not proxied.
#   `expose` does the same for the test services (MQTT broker, registry), on the bridge address.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

cmd=${1:-}
shift || true
DIR="$WASMFLOW_STATE/node"
KUBE_DIR="$WASMFLOW_STATE/kube"
ARCHIVE=
PORTS=()
while (($#)); do
  case $1 in
    --dir) DIR=${2:?--dir needs a directory}; shift 2 ;;
    --dir=*) DIR=${1#--dir=}; shift ;;
    --kube-dir) KUBE_DIR=${2:?--kube-dir needs a directory}; shift 2 ;;
    --kube-dir=*) KUBE_DIR=${1#--kube-dir=}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown argument '$1'" ;;
    *)
      if [[ $cmd == import && -z $ARCHIVE ]]; then ARCHIVE=$1
      elif [[ $cmd == expose && $1 =~ ^[0-9]+$ ]]; then PORTS+=("$1")
      else die "unexpected argument '$1'"
      fi
      shift
      ;;
  esac
done
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
KUBE_DIR=$(cd "$KUBE_DIR" 2>/dev/null && pwd) || KUBE_DIR=
# Bridge, subnet and cgroup are named after DIR, so nodes of two test sessions on one machine do not meet.
DIR_HASH=$(echo -n "$DIR" | sha256sum | cut -c1-8)
NODE_NAME=${WASMFLOW_NODE_NAME:-wasmflow-node}
BRIDGE=${WASMFLOW_NODE_BRIDGE:-wfn${DIR_HASH:0:6}}
SUBNET=${WASMFLOW_NODE_SUBNET:-10.244.$((16#${DIR_HASH:0:2}))}
GATEWAY=$SUBNET.1
# The `kubernetes` Service's ClusterIP: the first address of kube-env.sh's --service-cluster-ip-range 10.0.0.0/24.
SERVICE_IP=10.0.0.1
READY_TIMEOUT=${NODE_READY_TIMEOUT:-180}
SOCK=$DIR/containerd/containerd.sock
CGROUP_MOUNTS=/sys/fs/cgroup
# The kubelet's PATH: without /usr/sbin it finds no iptables (belt and braces with makeIPTablesUtilChains: false);
# containerd keeps the full PATH, to find runc (/usr/sbin/runc).
NODE_PATH=/usr/local/bin:/usr/bin:/bin

ours() { pidfile_runs "$DIR/$1.pid" "$DIR/"; }
ctr_() { ctr -a "$SOCK" -n k8s.io "$@"; }
kubectl_() { "$KUBECTL" --kubeconfig "$KUBE_DIR/kubeconfig" "$@"; }

# --- images ----------------------------------------------------------------------------------------------------------

# The busybox and sandbox images, built from /bin/busybox (Debian busybox-static) and cached by its content.
BUSYBOX=/bin/busybox
busybox_tag() { sha256sum "$BUSYBOX" | cut -c1-12; }
busybox_image() { echo "localhost/wasmflow-node/busybox:$(busybox_tag)"; }
pause_image() { echo "localhost/wasmflow-node/pause:$(busybox_tag)"; }

build_images() {
  local dir=$WASMFLOW_CACHE/images tag
  tag=$(busybox_tag)
  mkdir -p "$dir"
  [[ -f $dir/busybox-$tag.tar ]] ||
    python3 "$HACK_DIR/oci-archive.py" --out "$dir/busybox-$tag.tar" --name "$(busybox_image)" --busybox "$BUSYBOX" \
      --cmd '["/bin/sh"]' >/dev/null
  # The sandbox only holds the pod's namespaces: a shell that sleeps and exits at once on TERM.
  [[ -f $dir/pause-$tag.tar ]] ||
    python3 "$HACK_DIR/oci-archive.py" --out "$dir/pause-$tag.tar" --name "$(pause_image)" --busybox "$BUSYBOX" \
      --entrypoint '["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"]' >/dev/null
  echo "$dir/busybox-$tag.tar" "$dir/pause-$tag.tar"
}

# --- certificates ----------------------------------------------------------------------------------------------------

# client_cert NAME CN [O]: a client certificate signed by the API server's CA, and a kubeconfig using it.
client_cert() {
  local name=$1 cn=$2 org=${3:-} subj
  subj="/CN=$cn"
  [[ -n $org ]] && subj="/O=$org$subj"
  openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$DIR/pki/$name.key" -out "$DIR/pki/$name.csr" 2>/dev/null
  printf '%s\n' "extendedKeyUsage=clientAuth" >"$DIR/pki/client.ext"
  openssl x509 -req -in "$DIR/pki/$name.csr" -CA "$KUBE_DIR/ca.crt" -CAkey "$KUBE_DIR/ca.key" -CAcreateserial \
    -CAserial "$DIR/pki/ca.srl" -days 3650 -extfile "$DIR/pki/client.ext" -out "$DIR/pki/$name.crt" 2>/dev/null
  chmod 600 "$DIR/pki/$name.key"
  cat >"$DIR/$name.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
  - name: wasmflow-test
    cluster: {server: $(cat "$KUBE_DIR/server"), certificate-authority: $KUBE_DIR/ca.crt}
users:
  - name: $cn
    user: {client-certificate: $DIR/pki/$name.crt, client-key: $DIR/pki/$name.key}
contexts:
  - name: default
    context: {cluster: wasmflow-test, user: $cn}
current-context: default
KC
  chmod 600 "$DIR/$name.kubeconfig"
}

# --- cgroups ---------------------------------------------------------------------------------------------------------

# The cgroup (v1 memory hierarchy) this script runs in; the node's cgroupRoot goes below it.
cgroup_root() {
  local memcg
  memcg=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
  [[ -n $memcg && $memcg != / ]] ||
    die "this process has no memory cgroup of its own (memory:${memcg:-none} in /proc/self/cgroup); refusing to put the node's cgroups at the hierarchy root"
  echo "$memcg/wasmflow-node-$DIR_HASH"
}

# Every cgroup hierarchy mounted under /sys/fs/cgroup (v1 controllers, name=systemd, and the cgroup2 one).
cgroup_mounts() {
  awk -v base="$CGROUP_MOUNTS/" '{ for (i = 7; i < NF; i++) if ($i == "-") { fs = $(i + 1); break } }
    fs ~ /^cgroup2?$/ && index($5, base) == 1 { print $5 }' /proc/self/mountinfo
}

make_cgroups() {
  local root=$1 mount path level part
  : >>"$DIR/cgroups"
  while read -r mount; do
    path=$mount
    IFS=/ read -ra parts <<<"${root#/}"
    for part in "${parts[@]}"; do
      level=$path/$part
      if [[ ! -d $level ]]; then
        mkdir "$level"
        echo "$level" >>"$DIR/cgroups"
        # A new cpuset cgroup has no CPUs or memory nodes until given its parent's.
        if [[ -f $path/cpuset.cpus ]]; then
          cat "$path/cpuset.cpus" >"$level/cpuset.cpus"
          cat "$path/cpuset.mems" >"$level/cpuset.mems"
        fi
      fi
      path=$level
    done
  done < <(cgroup_mounts)
}

# Remove what runc left below cgroupRoot (processes first), then the levels this script created, deepest first.
remove_cgroups() {
  [[ -f $DIR/cgroups ]] || return 0
  local root level pid dir
  root=$(cat "$DIR/cgroup-root" 2>/dev/null || true)
  if [[ -n $root ]]; then
    while read -r dir; do
      for pid in $(cat "$dir/cgroup.procs" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    done < <(for m in $(cgroup_mounts); do [[ -d $m$root ]] && find "$m$root" -mindepth 1 -type d; done | sort -r)
    sleep 0.2
    for m in $(cgroup_mounts); do
      [[ -d $m$root ]] && find "$m$root" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  fi
  while read -r level; do
    rmdir "$level" 2>/dev/null || [[ ! -d $level ]] || log "warning: could not remove cgroup $level (still in use?)"
  done < <(tac "$DIR/cgroups")
  rm -f "$DIR/cgroups"
}

# --- network ---------------------------------------------------------------------------------------------------------

make_bridge() {
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    [[ -f $DIR/bridge ]] || die "a network interface named $BRIDGE exists and is not this node's (set WASMFLOW_NODE_BRIDGE)"
  else
    [[ -z $(ip -4 route show "$SUBNET.0/24") ]] ||
      die "$SUBNET.0/24 is already routed on this machine (set WASMFLOW_NODE_SUBNET): $(ip -4 route show "$SUBNET.0/24")"
    ip link add "$BRIDGE" type bridge
    echo "$BRIDGE" >"$DIR/bridge"
  fi
  ip addr replace "$GATEWAY/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  mkdir -p "$DIR/cni/net.d" "$DIR/cni/ipam"
  cat >"$DIR/cni/net.d/10-wasmflow.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "wasmflow-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "isDefaultGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$SUBNET.0/24", "gateway": "$GATEWAY"}]],
        "dataDir": "$DIR/cni/ipam"
      }
    }
  ]
}
JSON
}

# The kubernetes Service's ClusterIP as an address of the bridge (pods route to it through their gateway), served by a
# forwarder to the API server. One node per machine can have it: refused when another interface holds it.
serve_kubernetes_service() {
  local holder
  holder=$(ip -o -4 addr show to "$SERVICE_IP/32" | awk '{print $2}')
  [[ -z $holder || $holder == "$BRIDGE" ]] ||
    die "$SERVICE_IP (the kubernetes Service's ClusterIP) is already an address of $holder: another node runs here?"
  ip addr replace "$SERVICE_IP/32" dev "$BRIDGE"
  local server
  server=$(cat "$KUBE_DIR/server")
  forward "$SERVICE_IP:443" "${server#https://}"
}

# forward LISTEN TARGET: a forwarder (hack/node-forward.py) from LISTEN (IP:PORT) to TARGET, once.
forward() {
  local pidfile=$DIR/forward-${1//[.:]/-}.pid
  pidfile_runs "$pidfile" "$DIR/" && return 0
  start_daemon "$pidfile" "$DIR/forward.log" python3 "$HACK_DIR/node-forward.py" --state "$DIR/" "$1" "$2"
  local host=${1%:*} port=${1##*:}
  WAIT_FOR_PID=$(cat "$pidfile") wait_for 10 "the forwarder on $1" \
    bash -c "exec 2>/dev/null 3<>/dev/tcp/$host/$port"
}

stop_forwarders() {
  local pidfile
  for pidfile in "$DIR"/forward-*.pid; do
    [[ -e $pidfile ]] || continue
    if pidfile_runs "$pidfile" "$DIR/"; then stop_pidfile "$pidfile" 5; fi
    rm -f "$pidfile"
  done
}

remove_bridge() {
  [[ -f $DIR/bridge ]] || return 0
  ip link delete "$(cat "$DIR/bridge")" 2>/dev/null || true
  rm -f "$DIR/bridge"
  rm -rf "$DIR/cni/ipam"
}

# --- the private mount namespace -------------------------------------------------------------------------------------

# The sysctls kubelet sets unless they already have its values (setupKernelTunables), and the one the CNI bridge plugin
# sets (ip_forward), each covered inside the namespace by a file: they read as kubelet wants and writes land in DIR.
FAKE_SYSCTLS=(vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1
  kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000 net/ipv4/ip_forward=0)

start_namespace() {
  ours mntns && return 0
  : >"$DIR/mntns.anchor"
  : >"$DIR/mntns.log"
  start_daemon "$DIR/mntns.pid" "$DIR/mntns.log" unshare --mount --propagation private -- tail -f "$DIR/mntns.anchor"
  local pid entry key
  pid=$(cat "$DIR/mntns.pid")
  WAIT_FOR_PID=$pid wait_for 10 "the node's mount namespace" \
    bash -c "[[ \$(readlink /proc/$pid/ns/mnt) != \$(readlink /proc/self/ns/mnt) ]]"
  # containerd 1.6 keeps its shims' sockets and fifos in /run/containerd whatever its state directory: a tmpfs there,
  # in the namespace only, keeps them private (the mount point is made, and removed on stop, only if missing).
  if [[ ! -d /run/containerd ]]; then
    mkdir /run/containerd
    echo /run/containerd >"$DIR/made-dirs"
  fi
  nsenter "$(mntns)" -- mount -t tmpfs -o mode=0711 wasmflow-node /run/containerd
  mkdir -p "$DIR/sysctl"
  for entry in "${FAKE_SYSCTLS[@]}"; do
    key=${entry%%=*}
    echo "${entry#*=}" >"$DIR/sysctl/${key//\//.}"
    nsenter "$(mntns)" -- mount --bind "$DIR/sysctl/${key//\//.}" "/proc/sys/$key"
  done
}

# The node's mount namespace, for nsenter (which execs its command: the PID in a pidfile is the command's own).
mntns() { echo "--mount=/proc/$(cat "$DIR/mntns.pid")/ns/mnt"; }

# --- containerd ------------------------------------------------------------------------------------------------------

start_containerd() {
  ours containerd && return 0
  mkdir -p "$DIR/containerd"
  cat >"$DIR/containerd/config.toml" <<TOML
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "$SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$(pause_image)"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$DIR/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$DIR/containerd/certs.d"
TOML
  mkdir -p "$DIR/containerd/certs.d"
  start_daemon "$DIR/containerd.pid" "$DIR/containerd.log" nsenter "$(mntns)" -- \
    containerd --config "$DIR/containerd/config.toml"
  WAIT_FOR_PID=$(cat "$DIR/containerd.pid") wait_for 30 "containerd on $SOCK" ctr -a "$SOCK" version
}

import_archive() {
  local archive=$1
  [[ -f $archive ]] || die "no such image archive: $archive"
  ctr_ images import --all-platforms "$archive" >&2 || die "ctr could not import $archive"
}

# --- control-plane components and the kubelet ------------------------------------------------------------------------

# wait_healthz NAME PORT: the component's /healthz (over its self-signed TLS) answers ok.
wait_healthz() {
  WAIT_FOR_PID=$(cat "$DIR/$1.pid") wait_for 60 "$1 /healthz on :$2" curl -skf --max-time 2 "https://127.0.0.1:$2/healthz"
}

start_controller_manager() {
  ours controller-manager && return 0
  local port
  port=$(free_port)
  start_daemon "$DIR/controller-manager.pid" "$DIR/controller-manager.log" "$KCM" \
    --kubeconfig "$DIR/controller-manager.kubeconfig" --bind-address 127.0.0.1 --secure-port "$port" \
    --cert-dir "$DIR/pki/controller-manager" --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$KUBE_DIR/sa.key" --root-ca-file "$KUBE_DIR/ca.crt" \
    --service-cluster-ip-range 10.0.0.0/24 --cluster-name wasmflow-test --profiling=false
  wait_healthz controller-manager "$port"
}

start_scheduler() {
  ours scheduler && return 0
  local port
  port=$(free_port)
  start_daemon "$DIR/scheduler.pid" "$DIR/scheduler.log" "$SCHEDULER" \
    --kubeconfig "$DIR/scheduler.kubeconfig" --bind-address 127.0.0.1 --secure-port "$port" \
    --cert-dir "$DIR/pki/scheduler" --leader-elect=false --profiling=false
  wait_healthz scheduler "$port"
}

start_kubelet() {
  ours kubelet && return 0
  local port healthz
  port=$(free_port)
  healthz=$(free_port)
  mkdir -p "$DIR/kubelet" "$DIR/pod-logs"
  cat >"$DIR/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $GATEWAY
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $KUBE_DIR/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$SOCK
imageServiceEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
cgroupRoot: $(cat "$DIR/cgroup-root")
cgroupsPerQOS: true
enforceNodeAllocatable: []
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
protectKernelDefaults: false
podLogsDir: $DIR/pod-logs
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 40
YAML
  echo "$healthz" >"$DIR/kubelet-healthz-port"
  start_daemon "$DIR/kubelet.pid" "$DIR/kubelet.log" env PATH="$NODE_PATH" nsenter "$(mntns)" -- "$KUBELET" \
    --config "$DIR/kubelet/config.yaml" --kubeconfig "$DIR/kubelet.kubeconfig" --root-dir "$DIR/kubelet" \
    --cert-dir "$DIR/kubelet/pki" --hostname-override "$NODE_NAME" --node-ip "$GATEWAY" --v 2
  WAIT_FOR_PID=$(cat "$DIR/kubelet.pid") wait_for 60 "kubelet /healthz on :$healthz" \
    curl -sf --max-time 2 "http://127.0.0.1:$healthz/healthz"
}

node_ready() {
  [[ $(kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

healthy() {
  ours mntns && ours containerd && ours controller-manager && ours scheduler && ours kubelet &&
    pidfile_runs "$DIR/forward-${SERVICE_IP//./-}-443.pid" "$DIR/" && node_ready
}

# --- check -----------------------------------------------------------------------------------------------------------

# What the node needs of the machine, checked before minutes of builds: each missing part is named.
check_machine() {
  local missing=() memcg controller holder
  [[ $(id -u) -eq 0 ]] || missing+=("root (containers, cgroups, a network bridge): run as root")
  memcg=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
  [[ -n $memcg && $memcg != / ]] ||
    missing+=("a memory cgroup of this process's own (it is '${memcg:-none}' in /proc/self/cgroup): the node's cgroups go below it, never at a hierarchy's root")
  for controller in memory cpu pids cpuset; do
    [[ -d $CGROUP_MOUNTS/$controller ]] || missing+=("the cgroup v1 '$controller' hierarchy at $CGROUP_MOUNTS/$controller")
  done
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || missing+=("overlayfs (containerd's snapshotter)")
  holder=$(ip -o -4 addr show to "$SERVICE_IP/32" 2>/dev/null | awk '{print $2}')
  [[ -z $holder || $holder == "$BRIDGE" ]] || missing+=("$SERVICE_IP free (the kubernetes Service's ClusterIP; held by $holder)")
  if ((${#missing[@]})); then
    log "this machine cannot run the test node; missing:"
    printf '  - %s\n' "${missing[@]}" >&2
    return 1
  fi
  log "this machine can run the test node"
}

# --- start / stop ----------------------------------------------------------------------------------------------------

find_tools() {
  [[ -n $KUBE_DIR && -f $KUBE_DIR/server && -f $KUBE_DIR/ca.key ]] ||
    die "no API server state in '${KUBE_DIR:-$WASMFLOW_STATE/kube}': start it first with hack/kube-env.sh start"
  KUBECTL=$("$HACK_DIR/build-kube.sh" --print-path kubectl)
}

start() {
  check_machine || die "see above"
  find_tools
  "$HACK_DIR/kube-env.sh" status --dir "$KUBE_DIR" >/dev/null ||
    die "the API server of $KUBE_DIR is not running: hack/kube-env.sh start --dir $KUBE_DIR"
  if healthy; then
    log "node $NODE_NAME already running"
    return 0
  fi
  stop
  local tool
  for tool in containerd runc unshare nsenter ip; do
    command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin command -v "$tool" >/dev/null ||
      die "$tool is missing: hack/install-system-packages.sh node"
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x $BUSYBOX ]] ||
    die "CNI plugins or busybox missing: hack/install-system-packages.sh node"
  KCM=$("$HACK_DIR/build-kube.sh" --print-path kube-controller-manager)
  SCHEDULER=$("$HACK_DIR/build-kube.sh" --print-path kube-scheduler)
  KUBELET=$("$HACK_DIR/build-kube.sh" --print-path kubelet)
  local images
  read -ra images < <(build_images)

  mkdir -p "$DIR/pki"
  client_cert controller-manager system:kube-controller-manager
  client_cert scheduler system:kube-scheduler
  client_cert kubelet "system:node:$NODE_NAME" system:nodes
  kubectl_ create clusterrolebinding "wasmflow-node:$NODE_NAME" --clusterrole system:node \
    --user "system:node:$NODE_NAME" --dry-run=client -o yaml | kubectl_ apply -f - >/dev/null

  cgroup_root >"$DIR/cgroup-root"
  make_cgroups "$(cat "$DIR/cgroup-root")"
  make_bridge
  serve_kubernetes_service
  start_namespace
  start_containerd
  for archive in "${images[@]}"; do import_archive "$archive"; done
  start_controller_manager
  start_scheduler
  start_kubelet
  if ! wait_for "$READY_TIMEOUT" "node $NODE_NAME Ready" node_ready; then
    tail -30 "$DIR/kubelet.log" >&2
    die "the node did not become Ready (logs: $DIR/*.log)"
  fi
  log "node $NODE_NAME Ready (InternalIP $GATEWAY, cgroupRoot $(cat "$DIR/cgroup-root"), state $DIR)"
}

# Pods first, through the API while kubelet and containerd still run (kubelet stops each sandbox: CNI DEL, netns
# removed), then the processes, then anything they left behind.
stop() {
  local api=false
  if [[ -n $KUBE_DIR && -f $KUBE_DIR/kubeconfig ]] && "$HACK_DIR/kube-env.sh" status --dir "$KUBE_DIR" >/dev/null 2>&1; then
    api=true
    KUBECTL=$("$HACK_DIR/build-kube.sh" --print-path kubectl)
  fi
  stop_ours scheduler
  local on_node=(--all-namespaces --field-selector "spec.nodeName=$NODE_NAME")
  if $api && ours kubelet; then
    kubectl_ delete pods "${on_node[@]}" --wait=false --grace-period 1 >/dev/null 2>&1 || true
    kubectl_ wait --for=delete pods "${on_node[@]}" --timeout 30s >/dev/null 2>&1 || true
  fi
  if $api; then
    # What the kubelet did not confirm (it was not running, or too slow): gone from the API all the same.
    kubectl_ delete pods "${on_node[@]}" --grace-period 0 --force >/dev/null 2>&1 || true
  fi
  stop_ours controller-manager
  stop_ours kubelet
  if ours containerd; then
    local id
    for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$id" >/dev/null 2>&1 || true; done
  fi
  stop_ours containerd
  # The runc shims our containerd started (their command line names its socket).
  local pid
  for pid in $(pgrep -f -- "containerd-shim-runc-v2 .*-address $SOCK" || true); do kill -KILL "$pid" 2>/dev/null || true; done
  stop_ours mntns
  # Removing a mount point also detaches it in every other namespace: not while another node (its namespace's
  # tail -f on a mntns.anchor) may have its tmpfs there.
  if [[ -f $DIR/made-dirs ]] && ! pgrep -f -- "^tail -f .*/mntns\.anchor$" >/dev/null; then
    rmdir "$(cat "$DIR/made-dirs")" 2>/dev/null || true
    rm -f "$DIR/made-dirs"
  fi
  remove_cgroups
  stop_forwarders
  remove_bridge
  if $api; then
    kubectl_ delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
  rm -rf "$DIR/containerd/state" "$DIR/kubelet/pods" "$DIR/pod-logs"
}

stop_ours() {
  if ours "$1"; then stop_pidfile "$DIR/$1.pid" 15; else rm -f "$DIR/$1.pid"; fi
}

main() {
  case $cmd in
    start)
      take_lock "$DIR/.lock" 3600 || die "timed out waiting for $DIR/.lock"
      # A start that fails half-way leaves nothing behind (processes, cgroups, bridge): it is undone at once.
      local rc
      set +e
      (
        set -e
        start
      )
      rc=$?
      set -e
      if ((rc != 0)); then
        log "start failed: stopping what was started"
        stop
        return "$rc"
      fi
      ;;
    stop)
      take_lock "$DIR/.lock" 3600 || die "timed out waiting for $DIR/.lock"
      stop
      ;;
    status)
      find_tools
      if healthy; then echo "running: $NODE_NAME"; else echo "stopped"; return 1; fi
      ;;
    import)
      [[ -n $ARCHIVE ]] || die "import needs an image archive"
      ours containerd || die "the node's containerd is not running: $0 start --dir $DIR"
      import_archive "$ARCHIVE"
      ;;
    check) check_machine ;;
    expose)
      ((${#PORTS[@]})) || die "expose needs at least one port"
      find_tools
      healthy || die "not running; run: $0 start --dir $DIR"
      local port
      for port in "${PORTS[@]}"; do forward "$GATEWAY:$port" "127.0.0.1:$port"; done
      ;;
    env)
      find_tools
      healthy || die "not running; run: $0 start --dir $DIR"
      echo "KUBECONFIG=$KUBE_DIR/kubeconfig"
      echo "WASMFLOW_NODE_NAME=$NODE_NAME"
      echo "WASMFLOW_NODE_IP=$GATEWAY"
      echo "WASMFLOW_NODE_CONTAINERD=$SOCK"
      echo "WASMFLOW_NODE_BUSYBOX_IMAGE=$(busybox_image)"
      echo "WASMFLOW_NODE_PAUSE_IMAGE=$(pause_image)"
      echo "WASMFLOW_NODE_CGROUP_ROOT=$(cat "$DIR/cgroup-root")"
      echo "WASMFLOW_NODE_DIR=$DIR"
      echo "WASMFLOW_NODE_KUBERNETES_SERVICE=$SERVICE_IP:443"
      echo "export KUBECONFIG WASMFLOW_NODE_NAME WASMFLOW_NODE_IP WASMFLOW_NODE_KUBERNETES_SERVICE WASMFLOW_NODE_CONTAINERD WASMFLOW_NODE_BUSYBOX_IMAGE" \
        "WASMFLOW_NODE_PAUSE_IMAGE WASMFLOW_NODE_CGROUP_ROOT WASMFLOW_NODE_DIR"
      ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      return 2
      ;;
  esac
}

main; exit
