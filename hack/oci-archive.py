#!/usr/bin/env python3
"""Writes a one-layer OCI image archive (an OCI image layout in a tar) from files on this machine, so the test node's
containerd can import an image without any registry: `ctr -n k8s.io images import ARCHIVE`.

The layer is reproducible (sorted entries, fixed mtime 0, root-owned), so the same inputs give the same digests.
The image is named by the `io.containerd.image.name` annotation (what `ctr images import` reads).

usage: hack/oci-archive.py --out FILE --name REF [--add SRC:DEST]... [--busybox SRC]
                           [--entrypoint JSON] [--cmd JSON] [--user UID[:GID]] [--env K=V]...
  --add SRC:DEST   copy the file SRC to DEST in the image (mode kept)
  --busybox SRC    put the static busybox SRC at /bin/busybox with a /bin symlink for each of its applets
  --entrypoint / --cmd  JSON lists, e.g. '["/bin/sh","-c","echo hi"]'
Prints the manifest digest on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"


def _info(name: str, kind: bytes, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = linkname
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def build_layer(files: dict[str, Path], symlinks: dict[str, str]) -> bytes:
    """An uncompressed tar of ``files`` (image path -> source) and ``symlinks`` (image path -> target), with every
    parent directory, in sorted order."""
    dirs: set[str] = set()
    for path in [*files, *symlinks]:
        parent = Path(path).parent
        while str(parent) not in (".", "/", ""):
            dirs.add(str(parent))
            parent = parent.parent
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted({*dirs, *files, *symlinks}):
            if name in files:
                data = files[name].read_bytes()
                mode = files[name].stat().st_mode & 0o7777
                tar.addfile(_info(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))
            elif name in symlinks:
                tar.addfile(_info(name, tarfile.SYMTYPE, 0o777, linkname=symlinks[name]))
            else:
                tar.addfile(_info(name, tarfile.DIRTYPE, 0o755))
    return buf.getvalue()


def _descriptor(media_type: str, blob: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(blob).hexdigest(), "size": len(blob)}


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def write_archive(out: Path, name: str, layer: bytes, config: dict[str, object]) -> str:
    """Write the OCI layout tar to ``out`` (atomically); returns the manifest digest."""
    layer_desc = _descriptor(LAYER_MEDIA_TYPE, layer)
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
        "history": [{"created_by": "hack/oci-archive.py", "created": "1970-01-01T00:00:00Z"}],
        "created": "1970-01-01T00:00:00Z",
    }
    config_blob = _json(image_config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": _descriptor(CONFIG_MEDIA_TYPE, config_blob),
        "layers": [layer_desc],
    }
    manifest_blob = _json(manifest)
    manifest_desc = _descriptor(MANIFEST_MEDIA_TYPE, manifest_blob)
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            {
                **manifest_desc,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    blobs = {
        "oci-layout": _json({"imageLayoutVersion": "1.0.0"}),
        "index.json": _json(index),
    }
    for blob in (layer, config_blob, manifest_blob):
        blobs["blobs/sha256/" + hashlib.sha256(blob).hexdigest()] = blob
    tmp = out.with_name(out.name + f".tmp.{os.getpid()}")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            tar.addfile(_info(directory, tarfile.DIRTYPE, 0o755))
        for path, blob in sorted(blobs.items()):
            tar.addfile(_info(path, tarfile.REGTYPE, 0o644, len(blob)), io.BytesIO(blob))
    tmp.replace(out)
    return str(manifest_desc["digest"])


def busybox_files(busybox: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """/bin/busybox plus a symlink per applet it lists (`busybox --list`)."""
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    return {"bin/busybox": busybox}, {f"bin/{a}": "busybox" for a in applets if a != "busybox"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--add", action="append", default=[])
    parser.add_argument("--busybox", type=Path)
    parser.add_argument("--entrypoint")
    parser.add_argument("--cmd")
    parser.add_argument("--user")
    parser.add_argument("--env", action="append", default=[])
    args = parser.parse_args()
    files: dict[str, Path] = {}
    symlinks: dict[str, str] = {}
    if args.busybox:
        files, symlinks = busybox_files(args.busybox)
    for spec in args.add:
        src, _, dest = spec.partition(":")
        files[dest.lstrip("/")] = Path(src)
    config: dict[str, object] = {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", *args.env], "WorkingDir": "/"}
    if args.entrypoint:
        config["Entrypoint"] = json.loads(args.entrypoint)
    if args.cmd:
        config["Cmd"] = json.loads(args.cmd)
    if args.user:
        config["User"] = args.user
    print(write_archive(args.out, args.name, build_layer(files, symlinks), config))


if __name__ == "__main__":
    main()
