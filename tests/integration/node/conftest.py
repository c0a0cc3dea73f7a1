"""The test node: a session fixture starting ``hack/node.sh`` next to the session's API server.

Kept out of ``make test`` (``make test-node``) until it has run reliably in CI's time: the first run on a machine
builds three Kubernetes binaries, and the node needs root, cgroups and a network bridge.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from tests.integration.conftest import wait_until
from tests.node_env import NodeEnv, import_project_image, start_node, stop_node
from tests.services import KubeEnv


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def node(kube: KubeEnv, services_dir: Path) -> Iterator[NodeEnv]:
    """One Ready node (kubelet, containerd, scheduler, controller-manager), stopped and cleaned at the end.

    A SIGTERM (a CI job's timeout, a `kill`) becomes a KeyboardInterrupt while the node runs, so pytest still runs
    the teardowns: the node's processes, cgroups, mounts and bridge never outlive the session.
    """
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        env = start_node(services_dir / "node", kube.state_dir)
        try:
            yield env
        finally:
            stop_node(env)
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def node_namespace(node: NodeEnv, kube_client: ApiClient, namespace: str) -> str:
    """A fresh namespace whose ``default`` ServiceAccount (made by the controller-manager) exists, so pods can be
    admitted in it."""
    core = CoreV1Api(kube_client)
    wait_until(
        lambda: any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(namespace).items),
        what=f"the default ServiceAccount in {namespace}",
    )
    return namespace


@pytest.fixture(scope="session")
def project_image(node: NodeEnv) -> str:
    """The project image (``make docker-build``, cached by buildah) in the node's runtime; use it with
    ``imagePullPolicy: Never``. The first build on a machine takes minutes (base root, Python wheels)."""
    return import_project_image(node, "localhost/wasmflow:node-test")
