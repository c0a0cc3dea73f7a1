#!/usr/bin/env bash
# Builds the image's base locally from Debian packages, because no public base image can be pulled on these machines:
# a Debian bookworm root (minbase + python3, i.e. CPython 3.11, + ca-certificates, security updates included) made by
# mmdebstrap, imported into the buildah store and tagged localhost/wasmflow-base:<key>. Prints the base pinned by
# digest (localhost/wasmflow-base:<key>@sha256:...) on stdout: the value of the Dockerfile's BASE_IMAGE build argument.
#
# The root is reproducible (SOURCE_DATE_EPOCH, fixed layer timestamps), so the digest only moves when Debian publishes
# new package versions. It is cached: the tarball in $WASMFLOW_CACHE/images/, the image in the buildah store. Only the
# first run pays (about 3 min, mostly downloads); later runs print the cached reference at once. Refresh (to pick up
# new security updates) with --rebuild.
#
# usage: hack/base-image.sh [--rebuild]
# Override with BASE_SUITE (bookworm), BASE_PACKAGES ("python3 ca-certificates"), DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

SUITE=${BASE_SUITE:-bookworm}
PACKAGES=${BASE_PACKAGES:-python3 ca-certificates}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# 2025-01-01T00:00:00Z: file times in the root and its layer, so equal packages give an equal digest.
EPOCH=1735689600
IMAGES_DIR=$WASMFLOW_CACHE/images
REPO=localhost/wasmflow-base

rebuild=false
case ${1:-} in
  "") ;;
  --rebuild) rebuild=true ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1'" ;;
esac

ensure_debs buildah mmdebstrap

# The cache key covers everything that decides the root's content (apart from Debian's own updates).
key=$(printf '%s\n' "$SUITE" "$PACKAGES" "$MIRROR" "$SECURITY_MIRROR" "$EPOCH" "v1" | sha256sum | cut -c1-12)
tag="$SUITE-python3-$key"
tarball=$IMAGES_DIR/wasmflow-base-$tag.tar
image=$REPO:$tag

take_lock "$IMAGES_DIR/.base.lock" 1800 || die "timed out waiting for $IMAGES_DIR/.base.lock"

if $rebuild; then
  rm -f "$tarball"
  buildah rmi "$image" >/dev/null 2>&1 || true
fi

if [[ ! -f $tarball ]]; then
  log "building the base root ($SUITE: $PACKAGES) with mmdebstrap into $tarball"
  # Documentation, man pages and translations are left out (copyright files stay, for licence scanners).
  SOURCE_DATE_EPOCH=$EPOCH mmdebstrap --quiet --mode=root --format=tar --variant=minbase --include="${PACKAGES// /,}" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    "$SUITE" "$IMAGES_DIR/.partial-$tag.tar" \
    "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY_MIRROR $SUITE-security main" >&2
  mv -f "$IMAGES_DIR/.partial-$tag.tar" "$tarball"
fi

if ! buildah inspect --type image "$image" >/dev/null 2>&1; then
  log "importing $tarball as $image"
  ctr=$(buildah from scratch)
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  buildah add --quiet "$ctr" "$tarball" / >/dev/null
  buildah config --os linux --arch amd64 \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --label org.opencontainers.image.title=wasmflow-base \
    --label "org.opencontainers.image.description=Debian $SUITE minbase with: $PACKAGES" \
    --label "org.opencontainers.image.base.name=debian:$SUITE (mmdebstrap, local)" "$ctr"
  buildah commit --quiet --timestamp "$EPOCH" "$ctr" "$image" >/dev/null
fi

digest=$(buildah inspect --type image --format '{{.FromImageDigest}}' "$image")
[[ $digest == sha256:* ]] || die "no digest for $image (got '$digest')"
echo "$image@$digest"
