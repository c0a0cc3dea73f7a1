"""The controller's blob cache keeps to its budget however many modules it pulls (issue 16, smaller case b).

Before, every module version the controller ever pulled stayed in its cache: ~16 distinct 64 MiB modules filled
the chart's 1Gi emptyDir and the kubelet evicted the controller. Now, after each pull, the least recently used
entries are deleted until the cache fits ``WASMFLOW_CACHE_MAX_BYTES`` (chart: ``operator.cacheMaxBytes``). Here
the budget is three components' worth and the controller pulls ten distinct ones.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes.client import ApiClient, CustomObjectsApi

from tests.components.engine import wat
from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.services import Registry
from wasmflow.oci import Access, push_component
from wasmflow.operator.config import OperatorConfig

GROUP, VERSION = "wasmflow.io", "v1alpha1"
COMPONENTS = [wat.operator("map", "(nop) " * (8000 + i)) for i in range(10)]
#: Three components and their manifests.
BUDGET = 3 * max(len(c) for c in COMPONENTS) + 3 * 1024


@pytest.fixture
def controller_config(controller_config: OperatorConfig) -> OperatorConfig:
    return OperatorConfig(**{**controller_config.__dict__, "cache_max_bytes": BUDGET})


def cache_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def ready(kube_client: ApiClient, namespace: str, name: str) -> bool:
    body = cast(
        dict[str, Any],
        CustomObjectsApi(kube_client).get_namespaced_custom_object(GROUP, VERSION, namespace, "wasmmodules", name),
    )
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (body.get("status") or {}).get("conditions", []))


def test_the_controller_cache_stays_within_its_budget_while_it_pulls_many_modules(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, report: Report
) -> None:
    objects = CustomObjectsApi(kube_client)
    largest = 0
    for i, component in enumerate(COMPONENTS):
        reference = f"{registry.host}/cache/{uuid.uuid4().hex[:10]}:1.0"
        asyncio.run(push_component(reference, component, access=Access(insecure=True)))
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "WasmModule",
            "metadata": {"name": f"m{i}"},
            "spec": {"source": {"oci": {"reference": reference, "insecure": True}}, "operator": "map"},
        }
        objects.create_namespaced_custom_object(GROUP, VERSION, namespace, "wasmmodules", body)
        wait_until(lambda name=f"m{i}": ready(kube_client, namespace, name), what=f"m{i} Ready", timeout=60)
        largest = max(largest, cache_bytes(controller.cache_dir))
    pulled = sum(len(c) for c in COMPONENTS)
    assert cache_bytes(controller.cache_dir) <= BUDGET
    assert pulled > 2 * BUDGET  # without eviction the cache would hold them all
    report(budget_bytes=BUDGET, pulled_bytes=pulled, cache_bytes_peak_after_pull=largest)
