#!/usr/bin/env bash
# Builds the test-environment binaries from their Go modules, pinned, into the per-user cache:
#   kube-apiserver and kubectl  k8s.io/kubernetes (staging modules replaced by their published v0.Y.Z)
#   kube-controller-manager, kube-scheduler, kubelet
#                               the same module and release: the rest of a one-node cluster (hack/node.sh); not in
#                               `all` (heavy builds, only `make node-binaries` and the node tests need them)
#   etcd                        go.etcd.io/etcd/server/v3 (its main package is the module root)
#   helm                        helm.sh/helm/v4/cmd/helm
#   token-server                github.com/docker/distribution/contrib/token-server: the distribution project's own
#                               registry token service (bearer tokens, OAuth2 refresh-token grant), of the 2.8 line
#                               the Debian docker-registry package is (hack/registry.sh runs it for the token world)
#   cosign                      github.com/sigstore/cosign/v2/cmd/cosign: signs and verifies modules in the signature
#                               tests (the v2 line signs key-based offline with the `sha256-<digest>.sig` tag layout)
# Only the first run on a machine pays for the build (Go module and build caches live under $WASMFLOW_CACHE/go);
# later runs find $WASMFLOW_CACHE/bin/<name>-<version> and return at once without starting Go.
# Needs Go >= the pinned modules' go directive (1.26): /usr/local/go/bin/go, else `go` on PATH, or $GO.
#
# usage: hack/build-kube.sh [all|node|kube-apiserver|kubectl|etcd|helm|token-server|kube-controller-manager|
#                           kube-scheduler|kubelet]   (default: all; node: the three node binaries, one at a time)
#        hack/build-kube.sh --print-path NAME   builds NAME if missing, then prints its path (the only stdout)
#        hack/build-kube.sh --version NAME      prints the pinned version of NAME
# Override a pin with KUBE_VERSION, ETCD_VERSION, HELM_VERSION, DISTRIBUTION_VERSION or COSIGN_VERSION (each version
# gets its own cached binary). GO_BUILD_P sets `go build -p` (default 2, the cores of these machines; 1 on a shared
# machine).
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v4.3.1}"
# The last release line whose module has contrib/token-server (removed from the v3 tree); +incompatible: no go.mod.
DISTRIBUTION_VERSION="${DISTRIBUTION_VERSION:-v2.8.3}"
COSIGN_VERSION="${COSIGN_VERSION:-v2.6.5}"
BIN_DIR="$WASMFLOW_CACHE/bin"
GO_DIR="$WASMFLOW_CACHE/go"
NAMES=(etcd kube-apiserver kubectl helm token-server cosign)
NODE_NAMES=(kube-controller-manager kube-scheduler kubelet)
GO_BUILD_P="${GO_BUILD_P:-2}"

version_of() {
  case $1 in
    kube-apiserver | kubectl | kube-controller-manager | kube-scheduler | kubelet) echo "$KUBE_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    token-server) echo "$DISTRIBUTION_VERSION" ;;
    cosign) echo "$COSIGN_VERSION" ;;
    *) die "unknown binary '$1' (expected one of: ${NAMES[*]} ${NODE_NAMES[*]})" ;;
  esac
}

path_of() { echo "$BIN_DIR/$1-$(version_of "$1")"; }

# Go is only looked for (and configured) when something must be built, so the cached path stays instant.
setup_go() {
  GO="${GO:-}"
  if [[ -z $GO ]]; then
    if [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go; else GO=$(command -v go) || die "Go is not installed"; fi
  fi
  export GOMODCACHE="$GO_DIR/mod" GOCACHE="$GO_DIR/build" GOFLAGS="-mod=mod -buildvcs=false"
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off
  mkdir -p "$BIN_DIR" "$GO_DIR/src" "$GO_DIR/log"
}

# go_log NAME ARGS...: run Go with its chatter in NAME's build log; on failure show the end of it and stop.
go_log() {
  local name=$1
  shift
  if ! "$GO" "$@" >>"$LOG" 2>&1; then
    tail -25 "$LOG" >&2
    die "go $1 failed for $name (full log: $LOG)"
  fi
}

# module_dir NAME MODULE@VERSION PACKAGE...: a throwaway module requiring MODULE@VERSION whose tools.go imports the
# packages to build, tidied once (marked .ready). Prints its directory.
module_dir() {
  local name=$1 req=$2
  shift 2
  local dir=$GO_DIR/src/$name
  if [[ ! -f $dir/.ready ]]; then
    rm -rf "$dir" && mkdir -p "$dir"
    (
      cd "$dir"
      go_log "$name" mod init "wasmflow.test/build/$name"
      go_log "$name" mod edit -require="$req"
      if [[ $req == k8s.io/kubernetes@* ]]; then replace_kube_staging "$name"; fi
      {
        printf '//go:build tools\n\npackage tools\n\nimport (\n'
        printf '\t_ "%s"\n' "$@"
        printf ')\n'
      } >tools.go
      go_log "$name" mod tidy
    )
    touch "$dir/.ready"
  fi
  echo "$dir"
}

# k8s.io/kubernetes requires its staging modules (k8s.io/api, apimachinery, apiserver, client-go, ...) at v0.0.0 and
# replaces them by ./staging paths that a module download does not have; each is published as v0.<minor>.<patch>.
replace_kube_staging() {
  local gomod mod staging=v0.${KUBE_VERSION#v1.}
  gomod=$("$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION" 2>>"$LOG" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])') || die "cannot download k8s.io/kubernetes@$KUBE_VERSION (log: $LOG)"
  local mods=()
  while read -r mod; do mods+=("-replace=$mod=$mod@$staging"); done < <(
    awk '$1 ~ /^k8s\.io\/[a-z0-9-]+$/ && $2 == "v0.0.0" { print $1 }' "$gomod" | sort -u
  )
  ((${#mods[@]} > 0)) || die "no staging modules found in k8s.io/kubernetes@$KUBE_VERSION go.mod"
  go_log "$1" mod edit "${mods[@]}"
}

# The version stamps `make` would set, so /version and `kubectl version` report the release, and the binary version
# (which drives emulation and compatibility versions) is the real one.
ldflags_kube() {
  local minor=${KUBE_VERSION#v1.} flags="-s -w" p
  minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    flags+=" -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

# Helm stamps its own version; the Kubernetes version it speaks it reads from its build info (client-go).
ldflags_helm() {
  echo "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
}

build_one() {
  local name=$1 out version
  version=$(version_of "$name")
  out=$(path_of "$name")
  [[ -x $out ]] && return 0
  setup_go
  LOG="$GO_DIR/log/$name-$version.log"
  # One builder per cache at a time; whoever waited finds the binary already there.
  take_lock "$GO_DIR/build.lock" 3600 || die "another build holds $GO_DIR/build.lock"
  if [[ -x $out ]]; then release_lock; return 0; fi
  : >"$LOG"
  local start=$SECONDS dir ldflags pkg
  log "building $name $version from Go modules (first run with this version; cached afterwards)"
  case $name in
    kube-apiserver | kubectl)
      dir=$(module_dir "kubernetes-$KUBE_VERSION" "k8s.io/kubernetes@$KUBE_VERSION" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
      ldflags=$(ldflags_kube)
      pkg=k8s.io/kubernetes/cmd/$name
      ;;
    kube-controller-manager | kube-scheduler | kubelet)
      # A module of their own, so the API server's (already tidied on many machines) is left as it is; the shared
      # packages come out of the same Go build cache.
      dir=$(module_dir "kubernetes-node-$KUBE_VERSION" "k8s.io/kubernetes@$KUBE_VERSION" \
        k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet)
      ldflags=$(ldflags_kube)
      pkg=k8s.io/kubernetes/cmd/$name
      ;;
    etcd)
      dir=$(module_dir "etcd-$ETCD_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" go.etcd.io/etcd/server/v3)
      ldflags="-s -w"
      pkg=go.etcd.io/etcd/server/v3
      ;;
    helm)
      dir=$(module_dir "helm-$HELM_VERSION" "helm.sh/helm/v4@$HELM_VERSION" helm.sh/helm/v4/cmd/helm)
      ldflags=$(ldflags_helm)
      pkg=helm.sh/helm/v4/cmd/helm
      ;;
    token-server)
      pkg=github.com/docker/distribution/contrib/token-server
      dir=$(module_dir "distribution-$DISTRIBUTION_VERSION" "github.com/docker/distribution@$DISTRIBUTION_VERSION+incompatible" "$pkg")
      ldflags="-s -w"
      ;;
    cosign)
      pkg=github.com/sigstore/cosign/v2/cmd/cosign
      dir=$(module_dir "cosign-$COSIGN_VERSION" "github.com/sigstore/cosign/v2@$COSIGN_VERSION" "$pkg")
      ldflags="-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN_VERSION"
      ;;
  esac
  (cd "$dir" && go_log "$name" build -p "$GO_BUILD_P" -trimpath -ldflags "$ldflags" -o "$out.tmp.$$" "$pkg")
  local check=(--version)
  case $name in kubectl) check=(version --client) ;; helm | cosign) check=(version) ;; token-server) check=(-h) ;; esac
  "$out.tmp.$$" "${check[@]}" >>"$LOG" 2>&1 || die "the freshly built $name does not run (log: $LOG)"
  mv -f "$out.tmp.$$" "$out"
  release_lock
  log "built $name $version in $((SECONDS - start)) s: $out"
}

main() {
  case ${1:-all} in
    --print-path)
      [[ -n ${2:-} ]] || die "--print-path needs a binary name (${NAMES[*]} ${NODE_NAMES[*]})"
      build_one "$2"
      path_of "$2"
      ;;
    --version)
      [[ -n ${2:-} ]] || die "--version needs a binary name (${NAMES[*]})"
      version_of "$2"
      ;;
    all)
      local name
      for name in "${NAMES[@]}"; do build_one "$name"; done
      ;;
    node)
      local name
      for name in "${NODE_NAMES[@]}"; do build_one "$name"; done
      ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
    *) build_one "$1" ;;
  esac
}

# On one line, so that bash has read all of it before a long build runs: editing this file mid-build is then safe.
main "$@"; exit
