"""Session fixtures for the real test services, and a fresh namespace per test.

The services are started by the project's own hack/ scripts (through the small wrappers in tests/*_env.py) on
loopback with random ports, in a state directory private to this pytest run, and stopped at the end of the session
even when tests fail. Nothing here is faked: a service that cannot start makes its tests error, never skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import config
from kubernetes.client import ApiClient, CoreV1Api, V1Namespace, V1ObjectMeta

from tests.registry_env import TlsRegistry
from tests.services import (
    AuthRegistry,
    BrokerEnv,
    KubeEnv,
    Registry,
    RegistryEnv,
    start_broker,
    start_kube,
    start_registries,
    stop_broker,
    stop_kube,
    stop_registries,
)

pytest_plugins = ["tests.components.fixtures", "tests.fault_report"]


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """State directory for this run's services (data, logs, pid files, certificates)."""
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def kube(services_dir: Path) -> Iterator[KubeEnv]:
    """A real kube-apiserver + etcd (built from their Go modules, cached per user)."""
    env = start_kube(services_dir / "kube")
    try:
        yield env
    finally:
        stop_kube(env)


@pytest.fixture(scope="session")
def kube_client(kube: KubeEnv) -> Iterator[ApiClient]:
    """An admin API client for the real API server."""
    client = config.new_client_from_config(config_file=str(kube.kubeconfig))
    try:
        yield client
    finally:
        client.close()


@contextmanager
def fresh_namespace(kube_client: ApiClient, prefix: str) -> Iterator[str]:
    """A new namespace named ``<prefix>-<random>``, deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    core = CoreV1Api(kube_client)
    core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=name, labels={"wasmflow.io/test": "true"})))
    try:
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture
def namespace(kube_client: ApiClient) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (there is no controller-manager to finish deletion)."""
    with fresh_namespace(kube_client, "t") as name:
        yield name


@pytest.fixture(scope="session")
def registries(services_dir: Path) -> Iterator[RegistryEnv]:
    """Three real CNCF distribution registries: anonymous, htpasswd basic auth, and HTTPS with a test CA."""
    env = start_registries(services_dir / "registry")
    try:
        yield env
    finally:
        stop_registries(env)


@pytest.fixture(scope="session")
def registry(registries: RegistryEnv) -> Registry:
    """The anonymous plain-HTTP registry."""
    return registries.plain


@pytest.fixture(scope="session")
def registry_auth(registries: RegistryEnv) -> AuthRegistry:
    """The registry that requires basic auth."""
    return registries.auth


@pytest.fixture(scope="session")
def registry_tls(registries: RegistryEnv) -> TlsRegistry:
    """The HTTPS registry whose certificate only its test CA (``ca_file``) vouches for."""
    return registries.tls


@pytest.fixture(scope="session")
def mqtt_broker(services_dir: Path) -> Iterator[BrokerEnv]:
    """A real mosquitto (MQTT v5, shared subscriptions; plus auth and TLS listeners)."""
    env = start_broker(services_dir / "mosquitto")
    try:
        yield env
    finally:
        stop_broker(env)
