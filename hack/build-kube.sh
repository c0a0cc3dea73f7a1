#!/usr/bin/env bash
# Builds the test-environment binaries from their Go modules, pinned, into the per-user cache:
#   kube-apiserver and kubectl (k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3), helm (helm.sh/helm/v3).
# Only the first run on a machine pays for the build; later runs find $WASMFLOW_CACHE/bin/<name>-<version>.
#
# usage: hack/build-kube.sh [all|kube-apiserver|kubectl|etcd|helm]
#        hack/build-kube.sh --print-path NAME      (builds NAME if missing, then prints its path)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.19.0}"
BIN_DIR="$WASMFLOW_CACHE/bin"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
export GOMODCACHE="$WASMFLOW_CACHE/go/mod" GOCACHE="$WASMFLOW_CACHE/go/build" GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN=local CGO_ENABLED=0

version_of() {
  case $1 in
    kube-apiserver | kubectl) echo "$KUBE_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    *) die "unknown binary '$1' (expected kube-apiserver, kubectl, etcd or helm)" ;;
  esac
}

path_of() { echo "$BIN_DIR/$1-$(version_of "$1")"; }

# A throwaway module that requires k8s.io/kubernetes and replaces each staging module (v0.0.0 in its go.mod) by the
# published v0.Y.Z, which is how the Kubernetes Go modules can be built outside their repository.
kube_module() {
  local dir=$WASMFLOW_CACHE/go/src/kubernetes-$KUBE_VERSION minor=${KUBE_VERSION#v1.}
  local staging_version="v0.${minor}"
  if [[ ! -f $dir/.ready ]]; then
    rm -rf "$dir" && mkdir -p "$dir"
    (
      cd "$dir"
      "$GO" mod init wasmflow.test/kubebuild >/dev/null 2>&1
      "$GO" mod edit -require="k8s.io/kubernetes@$KUBE_VERSION"
      "$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION" >/dev/null
      local gomod
      gomod=$("$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
      grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$gomod" | awk '{print $1}' | sort -u | while read -r mod; do
        "$GO" mod edit -replace="$mod=$mod@$staging_version"
      done
      cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
      "$GO" mod tidy >/dev/null
    )
    touch "$dir/.ready"
  fi
  echo "$dir"
}

ldflags_kube() {
  local v=$KUBE_VERSION minor=${KUBE_VERSION#v1.}
  minor=${minor%%.*}
  local pkgs="k8s.io/component-base/version k8s.io/client-go/pkg/version"
  local flags="-s -w"
  for p in $pkgs; do
    flags+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    flags+=" -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

build_one() {
  local name=$1 out
  out=$(path_of "$name")
  [[ -x $out ]] && return 0
  mkdir -p "$BIN_DIR"
  local start=$SECONDS
  log "building $name $(version_of "$name") (first run on this machine; cached afterwards)"
  case $name in
    kube-apiserver | kubectl)
      local dir
      dir=$(kube_module)
      (cd "$dir" && "$GO" build -p 2 -trimpath -ldflags "$(ldflags_kube)" -o "$out.tmp" "k8s.io/kubernetes/cmd/$name")
      ;;
    etcd)
      local dir=$WASMFLOW_CACHE/go/src/etcd-$ETCD_VERSION
      mkdir -p "$dir"
      (
        cd "$dir"
        [[ -f go.mod ]] || "$GO" mod init wasmflow.test/etcdbuild >/dev/null 2>&1
        "$GO" mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
        printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
        "$GO" mod tidy >/dev/null
        "$GO" build -p 2 -trimpath -ldflags "-s -w" -o "$out.tmp" go.etcd.io/etcd/server/v3
      )
      ;;
    helm)
      local dir=$WASMFLOW_CACHE/go/src/helm-$HELM_VERSION
      mkdir -p "$dir"
      (
        cd "$dir"
        [[ -f go.mod ]] || "$GO" mod init wasmflow.test/helmbuild >/dev/null 2>&1
        "$GO" mod edit -require="helm.sh/helm/v3@$HELM_VERSION"
        printf '//go:build tools\n\npackage tools\n\nimport _ "helm.sh/helm/v3/cmd/helm"\n' >tools.go
        "$GO" mod tidy >/dev/null
        "$GO" build -p 2 -trimpath \
          -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
          -o "$out.tmp" helm.sh/helm/v3/cmd/helm
      )
      ;;
  esac
  mv "$out.tmp" "$out"
  log "built $name in $((SECONDS - start))s: $out"
}

main() {
  if [[ ${1:-} == --print-path ]]; then
    [[ -n ${2:-} ]] || die "--print-path needs a binary name"
    build_one "$2" >&2
    path_of "$2"
    return
  fi
  local target=${1:-all}
  if [[ $target == all ]]; then
    for name in etcd kube-apiserver kubectl helm; do build_one "$name"; done
  else
    build_one "$target"
  fi
}

main "$@"
