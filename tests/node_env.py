"""The test node (``hack/node.sh``) as typed Python: start it next to a running API server, stop it, read it.

The script owns the truth (binaries, containerd, cgroups, the bridge, certificates, readiness); this module runs it and
parses its ``env`` output. It is one real node: kube-controller-manager, kube-scheduler, containerd + runc + CNI and a
kubelet, joined to the API server of ``hack/kube-env.sh``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SCRIPT", "NodeEnv", "expose", "import_image", "import_project_image", "node_env", "start_node", "stop_node"]

HACK = Path(__file__).resolve().parent.parent / "hack"
SCRIPT = HACK / "node.sh"

# The first start on a machine builds kube-controller-manager, kube-scheduler and the kubelet (minutes each).
_START_TIMEOUT_S = 3600
_TIMEOUT_S = 180


@dataclass(frozen=True)
class NodeEnv:
    """A Ready node: its name and InternalIP, the containerd socket, and two images already in its runtime."""

    name: str
    ip: str
    containerd: Path
    busybox_image: str
    """A static busybox with an applet per /bin name; pull it with ``imagePullPolicy: Never``."""
    pause_image: str
    cgroup_root: str
    kubernetes_service: str
    """The ``kubernetes`` Service's ClusterIP:port, which pods reach (the API server through the node's forwarder)."""
    state_dir: Path
    kube_state_dir: Path


def _run(*args: str, timeout: float = _TIMEOUT_S) -> dict[str, str]:
    """Run the script; its KEY=VALUE stdout lines as a dict. A failure carries the script's own diagnosis."""
    result = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, check=False, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise RuntimeError(f"hack/node.sh {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def node_env(state_dir: Path, kube_state_dir: Path) -> NodeEnv:
    """The running node whose state lives in ``state_dir``."""
    env = _run("env", "--dir", str(state_dir), "--kube-dir", str(kube_state_dir))
    return NodeEnv(
        name=env["WASMFLOW_NODE_NAME"],
        ip=env["WASMFLOW_NODE_IP"],
        containerd=Path(env["WASMFLOW_NODE_CONTAINERD"]),
        busybox_image=env["WASMFLOW_NODE_BUSYBOX_IMAGE"],
        pause_image=env["WASMFLOW_NODE_PAUSE_IMAGE"],
        cgroup_root=env["WASMFLOW_NODE_CGROUP_ROOT"],
        kubernetes_service=env["WASMFLOW_NODE_KUBERNETES_SERVICE"],
        state_dir=state_dir.resolve(),
        kube_state_dir=kube_state_dir.resolve(),
    )


def start_node(state_dir: Path, kube_state_dir: Path) -> NodeEnv:
    """Start the node (or find it running) for the API server of ``kube_state_dir``; returns once it is Ready."""
    _run("start", "--dir", str(state_dir), "--kube-dir", str(kube_state_dir), timeout=_START_TIMEOUT_S)
    return node_env(state_dir, kube_state_dir)


def stop_node(env: NodeEnv) -> None:
    """Delete the node's pods and the Node, stop its processes, remove its cgroups and bridge; twice is fine."""
    _run("stop", "--dir", str(env.state_dir), "--kube-dir", str(env.kube_state_dir))


def expose(env: NodeEnv, *ports: int) -> None:
    """Make host services on ``127.0.0.1:PORT`` reachable from the node's pods at ``<env.ip>:PORT`` (forwarders that
    stop with the node): what the pods use to reach the test broker and registry."""
    _run("expose", *map(str, ports), "--dir", str(env.state_dir), "--kube-dir", str(env.kube_state_dir))


def import_image(env: NodeEnv, archive: Path) -> None:
    """Import an image archive (OCI layout or docker-archive tar) into the node's containerd."""
    _run("import", str(archive), "--dir", str(env.state_dir), "--kube-dir", str(env.kube_state_dir))


def import_project_image(env: NodeEnv, image: str) -> str:
    """Build the project image as ``image`` (hack/docker-build.sh, buildah) and import it into the node's containerd
    through an OCI archive (hack/node-image.sh); returns ``image``."""
    result = subprocess.run(
        [str(HACK / "node-image.sh"), "--dir", str(env.state_dir), "--kube-dir", str(env.kube_state_dir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=_START_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "IMG": image},
    )
    if result.returncode != 0:
        raise RuntimeError(f"hack/node-image.sh failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return image
