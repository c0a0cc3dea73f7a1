"""The test OCI registries (``hack/registry.sh``) as typed Python: start them, stop them, read their addresses.

The script owns the truth (package install, config, credentials, ports, readiness); this module runs it and parses
its ``env`` output, so the pytest fixtures, the benchmarks and a developer's shell all see the same registries:
three real CNCF distribution registries on loopback: plain HTTP anonymous, plain HTTP behind htpasswd basic auth,
and anonymous HTTPS with a certificate signed by a test CA (``ca_file``) that no system trust store knows.
``start_token_registries`` adds the token world (``hack/registry.sh --token``): bearer-token registries and the
distribution project's own token service, built from its Go module.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "SCRIPT",
    "AuthRegistry",
    "Registry",
    "RegistryEnv",
    "TlsRegistry",
    "TokenRegistryEnv",
    "registry_env",
    "start_registries",
    "start_token_registries",
    "stop_registries",
]

SCRIPT = Path(__file__).resolve().parent.parent / "hack" / "registry.sh"
# The first start on a machine may install docker-registry and apache2-utils.
_TIMEOUT_S = 600


@dataclass(frozen=True)
class Registry:
    """An anonymous registry: ``host`` is ``127.0.0.1:PORT`` (what references start with), ``url`` its base URL."""

    host: str
    url: str


@dataclass(frozen=True)
class AuthRegistry:
    """A registry that refuses anonymous requests (401) and accepts ``username``/``password`` (HTTP basic)."""

    host: str
    url: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class TlsRegistry:
    """An anonymous HTTPS registry whose certificate (for 127.0.0.1 and localhost) only ``ca_file`` vouches for."""

    host: str
    url: str
    ca_file: Path


@dataclass(frozen=True)
class TokenRegistryEnv:
    """The token world: HTTPS registries with ``auth: token`` and the token service they send clients to.

    ``registry`` sends clients to ``token_server`` (HTTPS) for tokens; ``plain_realm_registry`` sends them to
    ``token_server_plain``, the same service on plain HTTP (a realm a client must refuse), whose log
    (``token_server_plain_log``) shows whether anyone asked it. The service takes ``username``/``password`` (HTTP
    basic, or the OAuth2 password grant), issues refresh tokens (``offline_token=true``) and grants a user the
    repositories under its own name (``wasmflow/...``); tokens are for ``service`` and last 15 minutes.
    """

    state_dir: Path
    registry: str
    plain_realm_registry: str
    token_server: str
    token_server_plain: str
    token_server_log: Path
    token_server_plain_log: Path
    service: str
    username: str
    password: str = field(repr=False)
    ca_file: Path = field(default=Path())


@dataclass(frozen=True)
class RegistryEnv:
    state_dir: Path
    plain: Registry
    auth: AuthRegistry
    tls: TlsRegistry


def _run(*args: str) -> dict[str, str]:
    """Run the script; its KEY=VALUE stdout lines as a dict. A failure carries the script's own diagnosis."""
    result = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, check=False, timeout=_TIMEOUT_S, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise RuntimeError(f"hack/registry.sh {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def registry_env(state_dir: Path) -> RegistryEnv:
    """The addresses and credentials of the registries whose state lives in ``state_dir`` (started or not)."""
    env = _run("env", "--dir", str(state_dir))
    plain, auth = env["WASMFLOW_REGISTRY"], env["WASMFLOW_REGISTRY_AUTH"]
    return RegistryEnv(
        state_dir=state_dir,
        plain=Registry(host=plain, url=f"http://{plain}"),
        auth=AuthRegistry(
            host=auth,
            url=f"http://{auth}",
            username=env["WASMFLOW_REGISTRY_USER"],
            password=env["WASMFLOW_REGISTRY_PASSWORD"],
        ),
        tls=TlsRegistry(
            host=env["WASMFLOW_REGISTRY_TLS"],
            url=f"https://{env['WASMFLOW_REGISTRY_TLS']}",
            ca_file=Path(env["WASMFLOW_REGISTRY_CA"]),
        ),
    )


def start_registries(state_dir: Path) -> RegistryEnv:
    """Start (or find running) the registries for ``state_dir``; returns once each answers ``GET /v2/``."""
    _run("start", "--dir", str(state_dir))
    return registry_env(state_dir)


def start_token_registries(state_dir: Path) -> TokenRegistryEnv:
    """Start (or find running) the registries of ``state_dir`` with the token world; builds the token service the
    first time on a machine (a minute or two, then cached). Stop them with ``stop_registries(state_dir)``."""
    _run("start", "--dir", str(state_dir), "--token")
    env = _run("env", "--dir", str(state_dir), "--token")
    return TokenRegistryEnv(
        state_dir=state_dir,
        registry=env["WASMFLOW_TOKEN_REGISTRY"],
        plain_realm_registry=env["WASMFLOW_TOKEN_REGISTRY_PLAIN_REALM"],
        token_server=env["WASMFLOW_TOKEN_SERVER"],
        token_server_plain=env["WASMFLOW_TOKEN_SERVER_PLAIN"],
        token_server_log=state_dir / "token-server.log",
        token_server_plain_log=Path(env["WASMFLOW_TOKEN_SERVER_PLAIN_LOG"]),
        service=env["WASMFLOW_TOKEN_SERVICE"],
        username=env["WASMFLOW_REGISTRY_USER"],
        password=env["WASMFLOW_REGISTRY_PASSWORD"],
        ca_file=Path(env["WASMFLOW_REGISTRY_CA"]),
    )


def stop_registries(env: RegistryEnv | Path) -> None:
    """Stop the registries of ``env`` (or of a state directory); a no-op when they are not running."""
    _run("stop", "--dir", str(env.state_dir if isinstance(env, RegistryEnv) else env))
