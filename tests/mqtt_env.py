"""The MQTT test broker (``hack/mosquitto.sh``) as typed Python: start, restart and stop it, and read its addresses.

The script owns the truth (config, certificates, ports, readiness); this module runs it and parses its ``env``
output, so the pytest fixtures, the benchmarks and a developer's shell all see the same broker.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "hack" / "mosquitto.sh"


@dataclass(frozen=True)
class BrokerEnv:
    """A running mosquitto 2 (MQTT v5) with four loopback listeners.

    ``port``: anonymous; ``auth_port``: ``username``/``password`` only; ``tls_port``: TLS with ``ca_file``,
    anonymous; ``mtls_port``: TLS that requires a client certificate (``client_cert``/``client_key``).
    """

    state_dir: Path
    host: str
    port: int
    auth_port: int
    username: str
    password: str = field(repr=False)
    tls_port: int
    ca_file: Path
    mtls_port: int
    client_cert: Path
    client_key: Path

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"mqtt://{self.host}:{self.auth_port}"

    @property
    def tls_url(self) -> str:
        return f"mqtts://{self.host}:{self.tls_port}"

    @property
    def mtls_url(self) -> str:
        return f"mqtts://{self.host}:{self.mtls_port}"


def _run(*args: str) -> dict[str, str]:
    """Run the script; its KEY=VALUE stdout lines as a dict. A failure carries the script's own diagnosis."""
    result = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"hack/mosquitto.sh {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def broker_env(state_dir: Path) -> BrokerEnv:
    """The addresses of the broker whose state lives in ``state_dir`` (started or not)."""
    env = _run("env", "--dir", str(state_dir))
    return BrokerEnv(
        state_dir=state_dir,
        host=env["WASMFLOW_MQTT"].rsplit(":", 1)[0],
        port=_port(env["WASMFLOW_MQTT"]),
        auth_port=_port(env["WASMFLOW_MQTT_AUTH"]),
        username=env["WASMFLOW_MQTT_USER"],
        password=env["WASMFLOW_MQTT_PASSWORD"],
        tls_port=_port(env["WASMFLOW_MQTT_TLS"]),
        ca_file=Path(env["WASMFLOW_MQTT_CA"]),
        mtls_port=_port(env["WASMFLOW_MQTT_MTLS"]),
        client_cert=Path(env["WASMFLOW_MQTT_CLIENT_CERT"]),
        client_key=Path(env["WASMFLOW_MQTT_CLIENT_KEY"]),
    )


def start_broker(state_dir: Path) -> BrokerEnv:
    """Start (or find running) the broker for ``state_dir``; returns once every listener answers MQTT."""
    _run("start", "--dir", str(state_dir))
    return broker_env(state_dir)


def restart_broker(env: BrokerEnv) -> None:
    """Stop and start again on the same ports; persistent sessions and their queued messages survive."""
    _run("restart", "--dir", str(env.state_dir))


def stop_broker(env: BrokerEnv) -> None:
    _run("stop", "--dir", str(env.state_dir))
