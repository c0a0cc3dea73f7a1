#!/usr/bin/env bash
# The project image (Dockerfile, built with buildah by hack/docker-build.sh) as an OCI archive that the test node's
# containerd can import (hack/node.sh import ARCHIVE): nothing is pushed to any registry. The archive is cached by
# image ID and name in $WASMFLOW_CACHE/images, so an unchanged image is not written again. Prints the archive's path.
#
# usage: IMG=localhost/wasmflow:dev hack/node-image.sh [--dir NODE_DIR --kube-dir KUBE_DIR]
#   with --dir, also imports the archive into that running node (then pods use IMG with imagePullPolicy: Never)
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

IMG=${IMG:-localhost/wasmflow:dev}
node_args=()
while (($#)); do
  case $1 in
    --dir | --kube-dir) node_args+=("$1" "${2:?$1 needs a directory}"); shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1'" ;;
  esac
done

id=$(IMG=$IMG "$HACK_DIR/docker-build.sh")
# The archive names the image (IMG), so the key is the image ID and IMG.
archive=$WASMFLOW_CACHE/images/wasmflow-${id:0:16}-$(echo -n "$IMG" | sha256sum | cut -c1-8).tar
mkdir -p "$(dirname "$archive")"
if [[ ! -f $archive ]]; then
  buildah push -q "$IMG" "oci-archive:$archive.tmp.$$:$IMG" >/dev/null
  mv -f "$archive.tmp.$$" "$archive"
fi
if ((${#node_args[@]})); then "$HACK_DIR/node.sh" import "$archive" "${node_args[@]}" >&2; fi
echo "$archive"
