#!/usr/bin/env bash
# Runs the wasmflow image the way the chart's pod runs it, without a container runtime (none works in this sandbox:
# crun and runc cannot set rlimits here): the image's root mounted READ-ONLY, an empty tmpfs at /tmp (the pod's
# emptyDir), a private /proc and a minimal /dev, the image's own user (65532:65532, so no capabilities), no new
# privileges, and exactly the image's environment, working directory and entrypoint. Host directories can be
# mounted read-only with --volume, more emptyDirs added with --tmpfs, variables set with --env (as a pod spec
# would). The network is the host's. Exits with the command's status; TERM stops it.
#
# usage: hack/image-run.sh [--volume HOST_DIR:CONTAINER_DIR]... [--tmpfs DIR]... [--env NAME=VALUE]...
#                          [--entrypoint PATH] IMAGE [ARG...]
#   ARGs replace the image's CMD, as with `docker run IMAGE ARG...`.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

volumes=()
tmpfs=()
extra_env=()
entrypoint=""
while (($#)); do
  case $1 in
    --volume) volumes+=("${2:?--volume needs HOST_DIR:CONTAINER_DIR}"); shift 2 ;;
    --tmpfs) tmpfs+=("${2:?--tmpfs needs a directory}"); shift 2 ;;
    --env) extra_env+=("${2:?--env needs NAME=VALUE}"); shift 2 ;;
    --entrypoint) entrypoint=${2:?--entrypoint needs a path}; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option '$1'" ;;
    *) break ;;
  esac
done
image=${1:?usage: $0 [--volume HOST:CTR]... IMAGE [ARG...]}
shift
[[ $(id -u) -eq 0 ]] || die "needs root (mount namespaces and chroot)"
command -v buildah >/dev/null || die "buildah is not installed (hack/docker-build.sh installs it)"

# The image's runtime configuration, one field per line: user, working directory, entrypoint, cmd and env (NUL-free
# JSON values decoded by Python, which every machine running the hack/ scripts has).
config=$(buildah inspect --type image "$image" | python3 -c '
import json, shlex, sys
c = json.load(sys.stdin)["OCIv1"]["config"]
print(c.get("User") or "0:0")
print(c.get("WorkingDir") or "/")
print(shlex.join(c.get("Entrypoint") or []))
print(shlex.join(c.get("Cmd") or []))
print(shlex.join(c.get("Env") or []))
')
{
  read -r user
  read -r workdir
  read -r image_entrypoint
  read -r image_cmd
  read -r image_env
} <<<"$config"
[[ $user == *:* ]] || user="$user:$user"
eval "entry=($image_entrypoint)"
eval "cmd=($image_cmd)"
eval "env_vars=($image_env)"
env_vars+=("${extra_env[@]}")
[[ -n $entrypoint ]] && entry=("$entrypoint")
(($#)) && cmd=("$@")

ctr=$(buildah from --pull=never --quiet "$image")
cleanup() {
  buildah umount "$ctr" >/dev/null 2>&1 || true
  buildah rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
rootfs=$(buildah mount "$ctr")

# in_root DIR: make DIR inside the image's root and print where it really is there. Symlinks are resolved by the
# image's own tools under chroot (Debian's /var/run -> /run must not lead to the host's /run).
in_root() {
  chroot "$rootfs" /bin/mkdir -p "$1"
  chroot "$rootfs" /usr/bin/realpath -e "$1"
}

# Mount points for the volumes are made in the throwaway container's own layer, before its root turns read-only.
binds=()
for v in "${volumes[@]}"; do
  host=${v%%:*}
  target=${v#*:}
  [[ -d $host && $target == /* ]] || die "--volume $v: need an existing host directory and an absolute target"
  binds+=("$(cd "$host" && pwd)" "$(in_root "$target")")
done
tmpfs_dirs=()
for dir in "${tmpfs[@]}"; do
  [[ $dir == /* ]] || die "--tmpfs $dir: need an absolute path"
  tmpfs_dirs+=("$(in_root "$dir")")
done

# In private mount and PID namespaces, so every mount below disappears with the command. The command is PID 1 there:
# TERM (or INT) to this script is passed to it, as a kubelet's stop reaches a container; if this script is killed
# outright, unshare --kill-child still stops it.
unshare --mount --pid --fork --kill-child=TERM --propagation private bash -euo pipefail -c '
  rootfs=$1 user=$2 workdir=$3 nbinds=$4 ntmpfs=$5
  shift 5
  binds=("${@:1:nbinds}")
  shift "$nbinds"
  tmpfs=("${@:1:ntmpfs}")
  shift "$ntmpfs"
  mount --bind "$rootfs" "$rootfs"
  mount -o remount,bind,ro "$rootfs"
  mount -t tmpfs -o nosuid,nodev,mode=1777,size=512m tmpfs "$rootfs/tmp"
  mount -t proc -o nosuid,nodev,noexec proc "$rootfs/proc"
  mount -t tmpfs -o nosuid,mode=755,size=1m tmpfs "$rootfs/dev"
  for node in null zero full random urandom tty; do
    touch "$rootfs/dev/$node"
    mount --bind "/dev/$node" "$rootfs/dev/$node"
  done
  ln -s /proc/self/fd "$rootfs/dev/fd"
  for dir in "${tmpfs[@]}"; do
    mount -t tmpfs -o "nosuid,nodev,mode=1777,size=512m" tmpfs "$rootfs$dir"
  done
  for ((i = 0; i < nbinds; i += 2)); do
    mount --bind "${binds[i]}" "$rootfs${binds[i + 1]}"
    mount -o remount,bind,ro "$rootfs${binds[i + 1]}"
  done
  # The image'"'"'s own setpriv (util-linux is essential in Debian) changes to the user and drops every capability.
  exec chroot "$rootfs" /usr/bin/setpriv --reuid="${user%%:*}" --regid="${user#*:}" --clear-groups \
    --no-new-privs --inh-caps=-all --bounding-set=-all /usr/bin/env -i -C "$workdir" "$@"
' image-run "$rootfs" "$user" "$workdir" "${#binds[@]}" "${#tmpfs_dirs[@]}" "${binds[@]}" "${tmpfs_dirs[@]}" \
  "${env_vars[@]}" "${entry[@]}" "${cmd[@]}" &
child=$!
# unshare --fork ignores TERM and INT itself: pass them to its child, the command (PID 1 of the new namespace).
trap 'pkill -TERM -P "$child" 2>/dev/null || true' TERM INT
status=0
wait "$child" || status=$?
while kill -0 "$child" 2>/dev/null; do wait "$child" || status=$?; done
exit "$status"
