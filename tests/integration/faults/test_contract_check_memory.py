"""Several Python modules applied at once stay within the controller's memory (issue 16, case 5).

A contract check used to compile the component (an 18 MB componentize-py component peaked at about 400 MiB); the
controller before issue 16 ran every check in its own thread at once and compiled the same bytes again for each
grant set. Since issue 20 the check reads the types with wasm-tools in a child process, without a compile; checks
still wait for one slot (``WASMFLOW_MAX_CONCURRENT_CHECKS``, default 1) and one check serves every grant set. The
controller runs as its own process, so its peak RSS (``VmHWM``) is its own; checks ("compiles") are counted by its
metric.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from kubernetes.client import ApiClient, CustomObjectsApi

from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.integration.worker.test_worker_process import free_port
from tests.services import KubeEnv, Registry
from wasmflow.oci import Access, push_component

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")
GROUP, VERSION = "wasmflow.io", "v1alpha1"
#: componentize-py components (18 MB each), by module: (component, kind, capabilities). identity_map twice, under
#: two grant sets: three distinct digests.
MODULES = {
    "identity": ("identity_map", "map", []),
    "identity-networked": ("identity_map", "map", ["network", "stdio"]),
    "range": ("range_filter", "filter", []),
    "f2c": ("f2c_map", "map", []),
}
#: Under the chart's 384Mi: the controller's own ~150 MiB; a check runs wasm-tools in a child process (~31 MiB, not
#: counted here) and no longer compiles. The code before issue 16 ran four compiles at once (~400 MiB each).
PEAK_BOUND_MIB = 300


@pytest.fixture
def controller_process(kube: KubeEnv, crds_installed: None, namespace: str, tmp_path: Path) -> Iterator[Any]:
    """``wasmflow operator -n <namespace>`` as its own process, with its metrics on a port of its own."""
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kube.kubeconfig),
        "WASMFLOW_METRICS_PORT": str(port),
        "WASMFLOW_WORKER_IMAGE": "registry.test/wasmflow:test",
        "WASMFLOW_CACHE_DIR": str(tmp_path / "controller-cache"),
    }
    log = (tmp_path / "operator.log").open("wb")
    process = subprocess.Popen(
        [WASMFLOW, "operator", "-n", namespace, "--liveness", ""], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    process.metrics_port = port  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        process.kill()
        process.wait(30)
        log.close()


def peak_rss_mib(pid: int) -> float:
    """The process's high-water mark of resident memory (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def metric(port: int, name: str) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def ready(kube_client: ApiClient, namespace: str, name: str) -> bool:
    body = cast(
        dict[str, Any],
        CustomObjectsApi(kube_client).get_namespaced_custom_object(GROUP, VERSION, namespace, "wasmmodules", name),
    )
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@pytest.mark.timeout(900)
def test_python_modules_applied_at_once_are_checked_within_the_memory_bound_and_compiled_once_per_digest(
    controller_process: Any,
    kube_client: ApiClient,
    namespace: str,
    registry: Registry,
    component_bytes: Callable[[str], bytes],
    report: Report,
) -> None:
    references: dict[str, str] = {}
    for component in sorted({c for c, _, _ in MODULES.values()}):
        references[component] = f"{registry.host}/checks/{component}-{uuid.uuid4().hex[:8]}:1.0"
        asyncio.run(push_component(references[component], component_bytes(component), access=Access(insecure=True)))
    objects = CustomObjectsApi(kube_client)
    for name, (component, kind, capabilities) in MODULES.items():  # all at once: the controller sees them together
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "WasmModule",
            "metadata": {"name": name},
            "spec": {
                "source": {"oci": {"reference": references[component], "insecure": True}},
                "operator": kind,
                "capabilities": capabilities,
            },
        }
        objects.create_namespaced_custom_object(GROUP, VERSION, namespace, "wasmmodules", body)

    wait_until(
        lambda: all(ready(kube_client, namespace, name) for name in MODULES) or controller_process.poll() is not None,
        what="every WasmModule Ready",
        timeout=800,
    )
    assert controller_process.poll() is None, "the controller died"
    peak = peak_rss_mib(controller_process.pid)
    compiles = metric(controller_process.metrics_port, "wasmflow_controller_contract_compiles_total")
    report(modules=len(MODULES), digests=len(references), compiles=compiles, controller_peak_rss_mib=peak)
    assert compiles == len(references), compiles  # three digests, four modules: one compile each digest
    assert peak < PEAK_BOUND_MIB, peak
