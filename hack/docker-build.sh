#!/usr/bin/env bash
# Builds the wasmflow image (Dockerfile) with buildah, from the project's own files: the base comes from
# hack/base-image.sh (Debian packages, built locally and cached) and is passed pinned by digest as BASE_IMAGE.
# Installs buildah and mmdebstrap from Debian when missing. Prints the image ID on stdout (progress goes to stderr).
#
# usage: IMG=localhost/wasmflow:dev hack/docker-build.sh
#   IMG         tag of the result (default localhost/wasmflow:dev)
#   BASE_IMAGE  use this base instead of building one; must be pinned (NAME@sha256:...)
#   BUILDAH_ISOLATION  how RUN steps are isolated (default chroot: works as root in a sandbox without an OCI runtime)
#   BUILD_CA_FILE      CA bundle for the build's downloads (default: the host's /etc/ssl/certs/ca-certificates.crt, which
#                      trusts a TLS-intercepting proxy if the host does); a build secret, never stored in the image
#   STORAGE_DRIVER     buildah's storage driver (default: buildah's; set vfs where overlay mounts are not allowed)
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

IMG=${IMG:-localhost/wasmflow:dev}
ROOT=$(cd "$HACK_DIR/.." && pwd)
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}

ensure_debs buildah

base=${BASE_IMAGE:-$("$HACK_DIR/base-image.sh")}
[[ $base == *@sha256:* ]] || die "BASE_IMAGE must be pinned by digest (NAME@sha256:...), got '$base'"

version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/controller/wasmflow/__init__.py")
revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain -- controller pyproject.toml uv.lock Dockerfile 2>/dev/null) ]]; then
  revision="$revision-dirty"
fi
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
secret=()
ca=${BUILD_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}
[[ -f $ca ]] && secret=(--secret "id=build-ca,src=$ca")

log "building $IMG (wasmflow $version, $revision) on $base"
buildah build --layers --pull=never --format oci -f "$ROOT/Dockerfile" -t "$IMG" \
  --build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$version" \
  --build-arg "REVISION=$revision" --build-arg "CREATED=$created" "${secret[@]}" \
  "$ROOT" >&2
buildah inspect --type image --format '{{.FromImageID}}' "$IMG"
