"""Thin typed wrappers around the hack/ service scripts, so the pytest fixtures and the scripts share one truth.

Each ``start_*`` runs ``hack/<service>.sh start --dir DIR`` (idempotent, waits for readiness) and parses the
``env`` output into a frozen dataclass; ``stop_*`` stops by PID file.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class Registry:
    """An anonymous plain-HTTP registry."""

    host: str

    @property
    def url(self) -> str:
        return f"http://{self.host}"


@dataclass(frozen=True)
class AuthRegistry(Registry):
    """A registry that requires HTTP basic auth."""

    username: str = ""
    password: str = ""


@dataclass(frozen=True)
class RegistryEnv:
    state_dir: Path
    plain: Registry
    auth: AuthRegistry


def start_registries(state_dir: Path) -> RegistryEnv:
    run_script("registry.sh", "start", "--dir", str(state_dir))
    env = run_script("registry.sh", "env", "--dir", str(state_dir))
    return RegistryEnv(
        state_dir=state_dir,
        plain=Registry(env["WASMFLOW_REGISTRY"]),
        auth=AuthRegistry(
            env["WASMFLOW_REGISTRY_AUTH"],
            username=env["WASMFLOW_REGISTRY_USER"],
            password=env["WASMFLOW_REGISTRY_PASSWORD"],
        ),
    )


def stop_registries(env: RegistryEnv) -> None:
    run_script("registry.sh", "stop", "--dir", str(env.state_dir))


@dataclass(frozen=True)
class BrokerEnv:
    """mosquitto with an anonymous, a password and a TLS listener."""

    state_dir: Path
    host: str
    port: int
    auth_port: int
    username: str
    password: str
    tls_port: int
    ca_file: Path

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def _host_port(value: str) -> tuple[str, int]:
    host, port = value.rsplit(":", 1)
    return host, int(port)


def start_broker(state_dir: Path) -> BrokerEnv:
    run_script("mosquitto.sh", "start", "--dir", str(state_dir))
    env = run_script("mosquitto.sh", "env", "--dir", str(state_dir))
    host, port = _host_port(env["WASMFLOW_MQTT"])
    return BrokerEnv(
        state_dir=state_dir,
        host=host,
        port=port,
        auth_port=_host_port(env["WASMFLOW_MQTT_AUTH"])[1],
        username=env["WASMFLOW_MQTT_USER"],
        password=env["WASMFLOW_MQTT_PASSWORD"],
        tls_port=_host_port(env["WASMFLOW_MQTT_TLS"])[1],
        ca_file=Path(env["WASMFLOW_MQTT_CA"]),
    )


def restart_broker(env: BrokerEnv) -> None:
    run_script("mosquitto.sh", "restart", "--dir", str(env.state_dir))


def stop_broker(env: BrokerEnv) -> None:
    run_script("mosquitto.sh", "stop", "--dir", str(env.state_dir))
