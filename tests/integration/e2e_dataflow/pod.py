"""What the kubelet would do with a worker Deployment, done by hand: there is no kubelet in the test environment.

``WorkerPod`` reads the Deployment the controller wrote, lays out its container's volumes under a folder exactly as
they would be mounted (ConfigMap keys and Secret keys as files, emptyDirs as empty folders), and starts the
container's command as a local process with the container's env: ``wasmflow`` + its args, plus ``--root`` so the
absolute paths of the mounts resolve under that folder, and ``--http-port`` because a pod has its own network.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kubernetes.client import ApiClient, CoreV1Api

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write(root: Path, mount_path: str, relative: str, data: bytes) -> None:
    target = root / mount_path.lstrip("/") / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _volume_files(core: CoreV1Api, namespace: str, volume: dict[str, Any]) -> dict[str, bytes] | None:
    """The files a volume shows its container (None for an emptyDir)."""
    if "emptyDir" in volume:
        return None
    if "configMap" in volume:
        source = volume["configMap"]
        config_map = core.read_namespaced_config_map(source["name"], namespace)
        data = {k: v.encode() for k, v in (config_map.data or {}).items()}
        data |= {k: base64.b64decode(v) for k, v in (config_map.binary_data or {}).items()}
    elif "secret" in volume:
        source = volume["secret"]
        secret = core.read_namespaced_secret(source["secretName"], namespace)
        data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
    else:
        raise AssertionError(f"the worker pod uses a volume kind this emulation does not know: {volume}")
    items = source.get("items")
    return {i["path"]: data[i["key"]] for i in items} if items else data


@dataclass
class WorkerPod:
    """One replica of a worker Deployment, run as a process."""

    deployment: dict[str, Any]
    root: Path
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.deployment["spec"]["template"]["spec"]["containers"]
        return dict(container)

    def mount(self, kube_client: ApiClient) -> None:
        """Lay the container's volumes out under ``root``, as the kubelet mounts them."""
        core = CoreV1Api(kube_client)
        namespace = self.deployment["metadata"]["namespace"]
        volumes = {v["name"]: v for v in self.deployment["spec"]["template"]["spec"]["volumes"]}
        for mount in self.container["volumeMounts"]:
            files = _volume_files(core, namespace, volumes[mount["name"]])
            (self.root / mount["mountPath"].lstrip("/")).mkdir(parents=True, exist_ok=True)
            for relative, data in (files or {}).items():
                _write(self.root, mount["mountPath"], relative, data)

    def env(self) -> dict[str, str]:
        """The container's env (literal values only: the worker takes nothing from the API), plus what any
        container has: PATH, and HOSTNAME set to the pod's name."""
        variables = {}
        for variable in self.container.get("env", []):
            assert "valueFrom" not in variable, f"the worker env takes a value from the API: {variable}"
            variables[variable["name"]] = variable["value"]
        pod_name = f"{self.deployment['metadata']['name']}-{self.root.name}"[:63]
        return {**variables, "PATH": os.environ["PATH"], "HOME": str(self.root), "HOSTNAME": pod_name}

    def start(self) -> None:
        args = list(self.container["args"])
        assert args[0] == "worker", args
        command = [WASMFLOW, *args, "--root", str(self.root), "--http-port", str(self.http_port)]
        config = args[args.index("--config") + 1]
        command[command.index(config)] = str(self.root / config.lstrip("/"))
        with self.log.open("w") as log:  # a file, not a pipe: a chatty worker must never block on a full pipe
            self.process = subprocess.Popen(command, env=self.env(), stdout=log, stderr=subprocess.STDOUT, text=True)

    @property
    def log(self) -> Path:
        return self.root / "worker.log"

    def ready(self) -> bool:
        """What the readiness probe asks."""
        assert self.process is not None
        if self.process.poll() is not None:
            output = self.log.read_text(errors="replace")
            raise AssertionError(f"the worker exited with {self.process.returncode}:\n{output[-4000:]}")
        probe = self.container["readinessProbe"]["httpGet"]["path"]
        try:
            return httpx.get(f"http://127.0.0.1:{self.http_port}{probe}", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as the kubelet sends it, then the exit code (killed after ``timeout``, the grace period)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
