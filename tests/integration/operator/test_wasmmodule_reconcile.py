"""``wasmmodules.reconcile`` against the real registries, before any API server: each verdict from a real situation.

OCI sources without a pull Secret never call the Kubernetes API, so these run the controller's decisions on real
pulls and real contract checks quickly; test_wasmmodule_controller.py runs the same through Kopf on an API server.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.components.engine.wat import operator
from tests.services import Registry
from wasmflow.oci import Access, push_component
from wasmflow.oci.digests import sha256_digest
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.wasmmodules import Outcome, Result, reconcile

MAP = operator("map")


@pytest.fixture
def config(tmp_path: Path) -> OperatorConfig:
    return OperatorConfig(cache_dir=tmp_path / "cache", metrics_port=0)


def module(reference: str, kind: str = "map", generation: int = 1, **oci: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "WasmModule",
        "metadata": {"name": "op", "namespace": "ns", "generation": generation},
        "spec": {"source": {"oci": {"reference": reference, "insecure": True, **oci}}, "operator": kind},
    }


def pushed(registry: Registry, data: bytes = MAP) -> tuple[str, str]:
    ref = f"{registry.host}/reconcile/{uuid.uuid4().hex[:10]}:1.0"
    result = asyncio.run(push_component(ref, data, access=Access(insecure=True)))
    return ref, result.digest


def run(body: dict[str, Any], config: OperatorConfig, **kwargs: Any) -> Outcome:
    return asyncio.run(reconcile(client.ApiClient(), body, config, **kwargs))


def ready_of(outcome: Outcome) -> dict[str, Any]:
    return next(c for c in outcome.status["conditions"] if c["type"] == "Ready")


def test_a_pushed_component_is_ready_with_its_digest_world_and_imports(
    registry: Registry, config: OperatorConfig
) -> None:
    ref, _ = pushed(registry)
    outcome = run(module(ref), config)
    assert outcome.result is Result.READY
    assert outcome.status["artifact"]["digest"] == sha256_digest(MAP)
    assert outcome.status["artifact"]["size"] == len(MAP)
    assert outcome.status["world"] == "wasmflow:operator/map-operator@0.1.0"
    assert outcome.status["imports"] == []
    assert outcome.fetched is not None and outcome.fetched.pulled


def test_a_periodic_recheck_of_the_same_artifact_changes_nothing(registry: Registry, config: OperatorConfig) -> None:
    ref, _ = pushed(registry)
    first = run(module(ref), config)
    body = {**module(ref), "status": first.status}
    again = run(body, config, periodic=True)
    assert again.result is Result.UNCHANGED
    assert again.fetched is not None and not again.fetched.pulled  # the layer came from the cache


def test_a_tag_that_moved_is_pulled_and_checked_again_on_the_recheck(
    registry: Registry, config: OperatorConfig
) -> None:
    ref, _ = pushed(registry)
    first = run(module(ref), config)
    other = operator("map", body="(nop)")
    asyncio.run(push_component(ref, other, access=Access(insecure=True)))
    moved = run({**module(ref), "status": first.status}, config, periodic=True)
    assert moved.result is Result.READY
    assert moved.status["artifact"]["digest"] == sha256_digest(other)


def test_a_missing_tag_is_stalled_not_found_saying_how_to_push_it(registry: Registry, config: OperatorConfig) -> None:
    ref = f"{registry.host}/reconcile/{uuid.uuid4().hex[:10]}:1.0"
    outcome = run(module(ref), config)
    assert (outcome.result, outcome.reason) == (Result.STALLED, "NotFound")
    assert f"wasmflow push FILE {ref}" in outcome.message


def test_a_wrong_digest_pin_is_stalled_digest_mismatch(registry: Registry, config: OperatorConfig) -> None:
    ref, digest = pushed(registry)
    pin = "sha256:" + ("1" if digest[-1] == "0" else "0") * 64
    outcome = run(module(ref, digest=pin), config)
    assert (outcome.result, outcome.reason) == (Result.STALLED, "DigestMismatch")
    assert pin in outcome.message and "set spec.source.oci.digest" in outcome.message


def test_the_right_digest_pin_is_ready(registry: Registry, config: OperatorConfig) -> None:
    ref, digest = pushed(registry)
    assert run(module(ref, digest=digest), config).result is Result.READY


def test_a_component_over_the_controller_limit_is_stalled_too_large(registry: Registry, tmp_path: Path) -> None:
    ref, _ = pushed(registry)
    small = OperatorConfig(cache_dir=tmp_path, metrics_port=0, max_module_bytes=512)
    outcome = run(module(ref), small)
    assert (outcome.result, outcome.reason) == (Result.STALLED, "TooLarge")
    assert "WASMFLOW_MAX_MODULE_BYTES" in outcome.message


def test_a_component_of_another_kind_is_a_contract_violation(registry: Registry, config: OperatorConfig) -> None:
    ref, _ = pushed(registry)
    outcome = run(module(ref, kind="filter"), config)
    assert (outcome.result, outcome.reason) == (Result.STALLED, "ContractViolation")
    assert "[kind-mismatch]" in outcome.message and "wasmflow inspect" in outcome.message


def test_a_core_module_pushed_as_a_component_is_a_contract_violation(
    registry: Registry, config: OperatorConfig, component_bytes: Any
) -> None:
    ref, _ = pushed(registry, component_bytes("core_module"))
    outcome = run(module(ref), config)
    assert (outcome.result, outcome.reason) == (Result.STALLED, "ContractViolation")
    assert "[core-module]" in outcome.message


def test_a_reference_the_parser_refuses_is_stalled_invalid_reference(config: OperatorConfig) -> None:
    outcome = run(module("registry.example:5000/Ops/op:1"), config)
    assert (outcome.result, outcome.reason) == (Result.STALLED, "InvalidReference")
    assert "spec.source.oci.reference" in outcome.message and "lower-case" in outcome.message


def test_an_unreachable_registry_is_retried_with_backoff(config: OperatorConfig) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outcome = run(module(f"127.0.0.1:{port}/reconcile/op:1"), config, attempt=2)
    assert (outcome.result, outcome.reason, outcome.retry_after) == (Result.RETRY, "Unreachable", 20)
    reconciling = next(c for c in outcome.status["conditions"] if c["type"] == "Reconciling")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "ProgressingWithRetry")
    assert ready_of(outcome)["status"] == "False"


def test_the_flux_reconcile_request_is_echoed_in_the_status(registry: Registry, config: OperatorConfig) -> None:
    ref, _ = pushed(registry)
    body = module(ref)
    body["metadata"]["annotations"] = {"reconcile.fluxcd.io/requestedAt": "2026-12-01T08:00:00Z"}
    assert run(body, config).status["lastHandledReconcileAt"] == "2026-12-01T08:00:00Z"
