"""Thin typed wrappers around the hack/ service scripts, so the pytest fixtures and the scripts share one truth.

Each ``start_*`` runs ``hack/<service>.sh start --dir DIR`` (idempotent, waits for readiness) and parses the
``env`` output into a frozen dataclass; ``stop_*`` stops by PID file.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# The broker and the registries have their own modules (tests/mqtt_env.py, tests/registry_env.py); re-exported
# here for the fixtures that import them from here.
from tests.mqtt_env import BrokerEnv, restart_broker, start_broker, stop_broker
from tests.registry_env import AuthRegistry, Registry, RegistryEnv, start_registries, stop_registries

__all__ = [
    "HACK",
    "AuthRegistry",
    "BrokerEnv",
    "KubeEnv",
    "Registry",
    "RegistryEnv",
    "restart_broker",
    "run_script",
    "start_broker",
    "start_kube",
    "start_registries",
    "stop_broker",
    "stop_kube",
    "stop_registries",
]

HACK = Path(__file__).resolve().parent.parent / "hack"


def run_script(script: str, *args: str) -> dict[str, str]:
    """Run a hack script and parse any KEY=VALUE lines it prints on stdout."""
    result = subprocess.run([str(HACK / script), *args], capture_output=True, text=True, check=False, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"hack/{script} {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return {key: value for key, value in pairs}


@dataclass(frozen=True)
class KubeEnv:
    """A running kube-apiserver + etcd: an admin and a limited (no RBAC grants) identity."""

    state_dir: Path
    kubeconfig: Path
    kubeconfig_limited: Path
    server: str
    ca_file: Path
    admin_token: str
    limited_token: str


def start_kube(state_dir: Path) -> KubeEnv:
    run_script("kube-env.sh", "start", "--dir", str(state_dir))
    env = run_script("kube-env.sh", "env", "--dir", str(state_dir))
    return KubeEnv(
        state_dir=state_dir,
        kubeconfig=Path(env["KUBECONFIG"]),
        kubeconfig_limited=Path(env["WASMFLOW_KUBECONFIG_LIMITED"]),
        server=env["WASMFLOW_KUBE_SERVER"],
        ca_file=state_dir / "ca.crt",
        admin_token=(state_dir / "admin.token").read_text().strip(),
        limited_token=(state_dir / "limited.token").read_text().strip(),
    )


def stop_kube(env: KubeEnv) -> None:
    run_script("kube-env.sh", "stop", "--dir", str(env.state_dir))
