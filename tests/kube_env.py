"""The test Kubernetes API server (``hack/kube-env.sh``) as typed Python: start it, stop it, read its addresses.

The script owns the truth (binaries, certificates, tokens, ports, readiness); this module runs it and parses its
``env`` output, so the pytest fixtures, the benchmarks and a developer's shell all see the same API server.
It is a real kube-apiserver + etcd with RBAC and no kubelet, scheduler or controller-manager.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SCRIPT", "KubeEnv", "kube_env", "pinned_kube_version", "restart_apiserver", "start_kube", "stop_kube"]

HACK = Path(__file__).resolve().parent.parent / "hack"
SCRIPT = HACK / "kube-env.sh"

# The first start on a machine builds kube-apiserver and etcd from their Go modules (several minutes on 2 cores).
_START_TIMEOUT_S = 3600
_TIMEOUT_S = 120


@dataclass(frozen=True)
class KubeEnv:
    """A running API server: ``server`` over TLS signed by ``ca_file``, and two static-token identities.

    ``kubeconfig``/``admin_token``: user ``admin`` in ``system:masters``.
    ``kubeconfig_limited``/``limited_token``: user ``limited`` with no groups, so RBAC refuses it (403) by default.
    """

    kubeconfig: Path
    kubeconfig_limited: Path
    server: str
    admin_token: str = field(repr=False)
    limited_token: str = field(repr=False)
    ca_file: Path
    state_dir: Path
    version: str
    """The release the server reports at ``/version`` (``gitVersion``), e.g. ``v1.37.2``."""


def _run(*args: str, timeout: float = _TIMEOUT_S) -> dict[str, str]:
    """Run the script; its KEY=VALUE stdout lines as a dict. A failure carries the script's own diagnosis."""
    result = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, check=False, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise RuntimeError(f"hack/kube-env.sh {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def kube_env(state_dir: Path) -> KubeEnv:
    """The addresses and identities of the running API server whose state lives in ``state_dir``."""
    env = _run("env", "--dir", str(state_dir))
    return KubeEnv(
        kubeconfig=Path(env["KUBECONFIG"]),
        kubeconfig_limited=Path(env["WASMFLOW_KUBECONFIG_LIMITED"]),
        server=env["WASMFLOW_KUBE_SERVER"],
        admin_token=Path(env["WASMFLOW_KUBE_ADMIN_TOKEN_FILE"]).read_text().strip(),
        limited_token=Path(env["WASMFLOW_KUBE_LIMITED_TOKEN_FILE"]).read_text().strip(),
        ca_file=Path(env["WASMFLOW_KUBE_CA"]),
        state_dir=state_dir.resolve(),
        version=env["WASMFLOW_KUBE_VERSION"],
    )


def start_kube(state_dir: Path) -> KubeEnv:
    """Start (or find running) etcd + kube-apiserver for ``state_dir``; returns once ``/readyz`` answers 200.

    The first call on a machine builds the binaries (cached per user afterwards); a fresh start has an empty etcd.
    """
    _run("start", "--dir", str(state_dir), timeout=_START_TIMEOUT_S)
    return kube_env(state_dir)


def stop_kube(env: KubeEnv) -> None:
    """Stop the API server and etcd (TERM, then KILL); stopping twice is fine."""
    _run("stop", "--dir", str(env.state_dir))


def pinned_kube_version() -> str:
    """The Kubernetes release ``hack/build-kube.sh`` pins (what ``/version`` must report)."""
    result = subprocess.run(
        [str(HACK / "build-kube.sh"), "--version", "kube-apiserver"],
        capture_output=True,
        text=True,
        check=True,
        timeout=_TIMEOUT_S,
    )
    return result.stdout.strip()


def restart_apiserver(state_dir: Path) -> None:
    """Stop kube-apiserver and start it again on the same address against the same etcd: every object is kept,
    every connection and watch is broken (the fault a controller must ride out). Returns once ``/readyz`` is 200."""
    _run("restart-apiserver", "--dir", str(state_dir), timeout=_START_TIMEOUT_S)
