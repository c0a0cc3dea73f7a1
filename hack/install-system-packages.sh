#!/usr/bin/env bash
# Installs the Debian packages the test services and builds need: the CNCF distribution registry, mosquitto
# (MQTT v5 broker and clients), openssl (test certificates) and graphviz (`dot`: `wasmflow graph --format svg`).
# Idempotent: does nothing when all are present.
# `hack/install-system-packages.sh node` installs instead what the test node (hack/node.sh) needs: containerd, runc,
# the CNI plugins (bridge, host-local, loopback in /usr/lib/cni), a static busybox for its images, iproute2.
set -euo pipefail

packages=(docker-registry mosquitto mosquitto-clients openssl apache2-utils graphviz)
if [[ ${1:-} == node ]]; then
  packages=(containerd runc containernetworking-plugins busybox-static iproute2 util-linux openssl curl)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; then
  $sudo apt-get update -qq
  $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packages start system-wide daemons; the tests run their own instances on random ports.
for svc in mosquitto docker-registry containerd; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $sudo systemctl stop "$svc" || true
  fi
done
