"""AIO graph artifacts under the controller's required signature policy, on the real API server: a graph whose
artifact and modules are signed by the chart's trusted key is pinned; an unsigned graph artifact stalls its Dataflow
(SignatureMissing) before anything of it is pulled."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from kubernetes.client import ApiClient

from tests.integration.conftest import wait_until
from tests.integration.operator.test_aio_dataflow import (
    GRAPH_MODULES,
    GRAPH_TAG,
    artifact_graph,
    create,
    graph_dataflow,
    push_graph,
    status_modules,
)
from tests.integration.operator.test_dataflow_controller import condition, get_dataflow
from tests.services import BrokerEnv, Registry
from wasmflow.operator.config import OperatorConfig

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")


@pytest.fixture
def controller_config(tmp_path: Path) -> OperatorConfig:
    """Signatures required; the chart's verify.publicKeys holds one key, whose private half is signing.key."""
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "signing.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    keys = tmp_path / "keys.pem"
    keys.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return OperatorConfig(
        worker_image="registry.test/wasmflow:test",
        metrics_port=0,
        cache_dir=tmp_path / "controller-cache",
        verify_required=True,
        verify_keys_file=keys,
    )


def sign(reference: str, key: Path) -> None:
    result = subprocess.run(
        [WASMFLOW, "sign", reference, "--key", str(key), "--insecure"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def stalled_reason(kube_client: ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    stalled = condition(get_dataflow(kube_client, namespace, name), "Stalled")
    return stalled if stalled and stalled["status"] == "True" else None


def test_a_graph_signed_with_its_modules_by_the_trusted_key_is_pinned(
    controller: OperatorConfig,
    kube_client: ApiClient,
    namespace: str,
    registry: Registry,
    mqtt_broker: BrokerEnv,
    component: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    base = f"{registry.host}/{namespace}"
    _, digests = push_graph(base, component)
    for reference in (GRAPH_TAG, *sorted(GRAPH_MODULES)):
        sign(f"{base}/{reference}", tmp_path / "signing.key")
    create(kube_client, namespace, graph_dataflow("temps", mqtt_broker, artifact_graph(base)))
    listed = wait_until(lambda: status_modules(kube_client, namespace, "temps"), what="status.modules")
    assert listed == digests


def test_an_unsigned_graph_artifact_stalls_its_dataflow_as_signature_missing(
    controller: OperatorConfig,
    kube_client: ApiClient,
    namespace: str,
    registry: Registry,
    mqtt_broker: BrokerEnv,
    component: Callable[[str], Path],
) -> None:
    base = f"{registry.host}/{namespace}"
    manifest, _ = push_graph(base, component)
    create(kube_client, namespace, graph_dataflow("temps", mqtt_broker, artifact_graph(base)))
    stalled = wait_until(lambda: stalled_reason(kube_client, namespace, "temps"), what="the Dataflow Stalled")
    assert stalled["reason"] == "SignatureMissing"
    assert f"graph artifact {base}/{GRAPH_TAG}" in stalled["message"]
    assert f"no signature found for {manifest}" in stalled["message"]
