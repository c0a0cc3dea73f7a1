"""Figure 5: the controller under a burst. 100 WasmModules, then 100 Dataflows, applied at once; time until every one
is Ready, and the controller's memory.

Real services, started for this run: kube-apiserver + etcd (hack/kube-env.sh), the registry (hack/registry.sh),
and ``wasmflow operator`` as its own process (so its RSS is its own), watching one namespace.

* WasmModules: 100 distinct WAT components (bench/wat_operators, one data segment differs, so 100 digests) pushed
  to the registry; each module is resolved, pulled, verified and checked by the controller.
* Dataflows: each one a source -> map -> sink graph on one of those modules. A Dataflow is Ready when its worker
  Deployment has its replicas ready. There is no kubelet or kube-controller-manager here, so the bench plays their
  part (``KubeletStandIn``): when a worker Deployment appears it writes the status a Deployment gets once its pods
  exist (none ready), and ``POD_START_SECONDS`` later marks them ready, as the Deployment controller does once the
  pods pass their readiness probe. Everything else is the controller's work.
* Comparators, measured in the same run: one object of the same kind alone to Ready (the latency the burst is
  measured against) and the API writes of the 100 objects alone (the floor: creating them with no reconcile).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes import config as kube_config
from kubernetes import watch
from kubernetes.client import ApiClient, ApiException, AppsV1Api, CoreV1Api, CustomObjectsApi, V1Namespace, V1ObjectMeta
from kubernetes.dynamic import DynamicClient
from tests.kube_env import KubeEnv

from bench import services, wat_operators
from bench.report import PartialResults, Sample
from wasmflow.api.crd import crds
from wasmflow.oci.pull import Access
from wasmflow.oci.push import push_component

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")
COUNT = 100
GROUP, VERSION = "wasmflow.io", "v1alpha1"
READY_TIMEOUT = 120.0
#: How long the stand-in's pods take to become ready (a real pod: image pull, start, readiness probe; longer).
POD_START_SECONDS = 1.0


def _install_crds(api: ApiClient) -> None:
    resource = DynamicClient(api).resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    for crd in crds().values():
        resource.server_side_apply(body=crd, field_manager="wasmflow-bench", force_conflicts=True)
    crd_resource = DynamicClient(api).resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )

    def established() -> bool:
        for crd in crds().values():
            live = crd_resource.get(name=crd["metadata"]["name"])
            conditions = (live.status or {}).get("conditions") or []
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return False
        return True

    services.wait_for(established, what="the CRDs Established", timeout=60, interval=0.2)
    objects = CustomObjectsApi(api)

    def served() -> bool:  # Established comes before the storage answers ("storage is (re)initializing")
        try:
            for plural in ("wasmmodules", "dataflows"):
                objects.list_cluster_custom_object(GROUP, VERSION, plural, limit=1)
        except ApiException:
            return False
        return True

    services.wait_for(served, what="the custom resources served", timeout=60, interval=0.2)


def _push_modules(registry: str, count: int) -> list[str]:
    """Push ``count`` distinct components; their references (by tag)."""
    base = wat_operators.f2c_map()
    components = [wat_operators.tagged(base, f"module-{i}") for i in range(count)]

    async def push_all() -> list[str]:
        window = asyncio.Semaphore(8)

        async def one(i: int, data: bytes) -> str:
            reference = f"{registry}/bench/op-{i}:1.0.0"
            async with window:
                await push_component(reference, data, access=Access(insecure=True))
            return reference

        return await asyncio.gather(*(one(i, d) for i, d in enumerate(components)))

    return asyncio.run(push_all())


def _module_doc(name: str, reference: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WasmModule",
        "metadata": {"name": name},
        "spec": {"source": {"oci": {"reference": reference, "insecure": True}}, "operator": "map"},
    }


def _dataflow_doc(name: str, module: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Dataflow",
        "metadata": {"name": name},
        "spec": {
            "endpoints": {"plant": {"mqtt": {"url": "mqtt://mosquitto.plant:1883", "qos": 1}}},
            "nodes": [
                {"name": "in", "type": "source", "endpoint": "plant", "topic": f"sensors/{name}"},
                {"name": "convert", "type": "map", "module": module},
                {"name": "out", "type": "sink", "endpoint": "plant", "topic": f"celsius/{name}"},
            ],
            "edges": [{"from": "in", "to": "convert"}, {"from": "convert", "to": "out"}],
        },
    }


def _ready(body: dict[str, Any]) -> bool:
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@contextmanager
def _controller(env: KubeEnv, namespace: str, cache: Path) -> Iterator[subprocess.Popen[bytes]]:
    port = services.free_port()
    process_env = {
        **os.environ,
        "KUBECONFIG": str(env.kubeconfig),
        "WASMFLOW_METRICS_PORT": "0",
        "WASMFLOW_CACHE_DIR": str(cache),
        "WASMFLOW_WORKER_IMAGE": "registry.test/wasmflow:bench",
    }
    log = (cache.parent / "controller.log").open("w")
    process = subprocess.Popen(
        [WASMFLOW, "operator", "-n", namespace, "--liveness", f"http://127.0.0.1:{port}/healthz"],
        env=process_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        services.wait_for(
            lambda: process.poll() is not None or services.http_ok(f"http://127.0.0.1:{port}/healthz"),
            what="the controller's liveness endpoint",
            timeout=120,
            interval=0.1,
        )
        if process.poll() is not None:
            raise RuntimeError(f"the controller exited with {process.returncode}; see {log.name}")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


class KubeletStandIn:
    """Plays the Deployment controller and kubelet for the worker Deployments in ``namespace``: at once the status
    a Deployment gets when its pods are created (replicas, none ready), then, ``POD_START_SECONDS`` later, ready."""

    def __init__(self, api: ApiClient, namespace: str) -> None:
        self.apps = AppsV1Api(api)
        self.namespace = namespace
        self._stop = threading.Event()
        self._seen: set[str] = set()
        self._timers: list[threading.Timer] = []
        self._thread = threading.Thread(target=self._run, name="kubelet-stand-in", daemon=True)
        self._thread.start()

    def _status(self, name: str, generation: int, replicas: int, ready: int) -> None:
        status = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": replicas - ready,
        }
        self.apps.patch_namespaced_deployment_status(name, self.namespace, {"status": status})

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            for event in stream.stream(self.apps.list_namespaced_deployment, self.namespace, timeout_seconds=5):
                if self._stop.is_set():
                    stream.stop()
                    return
                deployment = event["object"]
                name, generation = deployment.metadata.name, deployment.metadata.generation
                key = f"{name}/{generation}"
                if event["type"] == "DELETED" or key in self._seen:
                    continue
                self._seen.add(key)
                replicas = deployment.spec.replicas or 0
                self._status(name, generation, replicas, 0)
                timer = threading.Timer(POD_START_SECONDS, self._status, (name, generation, replicas, replicas))
                timer.start()
                self._timers.append(timer)

    def stop(self) -> None:
        self._stop.set()
        for timer in self._timers:
            timer.cancel()
        self._thread.join(10)


def _burst(
    objects: CustomObjectsApi, namespace: str, plural: str, docs: list[dict[str, Any]]
) -> tuple[float, float, list[float]]:
    """Create ``docs`` at once (8 concurrent writers); (seconds of the writes, seconds until all Ready, per-object
    seconds to Ready)."""
    names = {doc["metadata"]["name"] for doc in docs}
    ready_at: dict[str, float] = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(lambda doc: objects.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, doc), docs)
        )
    writes = time.perf_counter() - start

    def all_ready() -> bool:
        listed: dict[str, Any] = objects.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        items = listed["items"]
        now = time.perf_counter() - start
        for item in items:
            name = item["metadata"]["name"]
            if name in names and name not in ready_at and _ready(item):
                ready_at[name] = now
        return len(ready_at) == len(names)

    try:
        services.wait_for(all_ready, what=f"{len(docs)} {plural} Ready", timeout=READY_TIMEOUT, interval=0.2)
    except TimeoutError as exc:
        stuck = sorted(names - set(ready_at))
        raise TimeoutError(f"{exc}: {len(stuck)} never became Ready ({', '.join(stuck[:10])})") from None
    return writes, time.perf_counter() - start, sorted(ready_at.values())


def _one(objects: CustomObjectsApi, namespace: str, plural: str, doc: dict[str, Any]) -> float:
    start = time.perf_counter()
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, doc)
    name = doc["metadata"]["name"]

    def ready() -> bool:
        body: dict[str, Any] = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        return _ready(body)

    services.wait_for(ready, what=f"{plural}/{name} Ready", timeout=READY_TIMEOUT, interval=0.05)
    return time.perf_counter() - start


def _figure(kind: str, writes: float, total: float, per_object: list[float], one: float) -> dict[str, Any]:
    spread = Sample.of(per_object)
    return {
        "name": f"5. controller: {COUNT} {kind} applied at once, time until all Ready",
        "unit": "s",
        "ours": Sample.of([total]),
        "comparators": {
            "one alone to Ready": Sample.of([one]),
            f"API writes of the {COUNT} alone": Sample.of([writes]),
        },
        "note": f"one burst; each object Ready after {spread.median:.1f} s median, {spread.p90:.1f} s p90",
    }


def run() -> list[dict[str, Any]]:
    with (
        services.kube() as env,
        services.registries() as registries,
        tempfile.TemporaryDirectory(prefix="wasmflow-bench-controller-") as tmp,
    ):
        api = kube_config.new_client_from_config(config_file=str(env.kubeconfig))
        try:
            _install_crds(api)
            namespace = f"bench-{uuid.uuid4().hex[:8]}"
            CoreV1Api(api).create_namespace(V1Namespace(metadata=V1ObjectMeta(name=namespace)))
            references = _push_modules(registries.plain.host, COUNT + 1)
            objects = CustomObjectsApi(api)
            cache = Path(tmp) / "cache"
            cache.mkdir()
            with _controller(env, namespace, cache) as controller:
                idle = services.rss_bytes(controller.pid)
                one_module = _one(objects, namespace, "wasmmodules", _module_doc("single", references[COUNT]))
                module_docs = [_module_doc(f"op-{i}", references[i]) for i in range(COUNT)]
                modules = _burst(objects, namespace, "wasmmodules", module_docs)
                figures = [_figure("WasmModules", *modules, one_module)]
                kubelet = KubeletStandIn(api, namespace)
                failure = None
                try:
                    one_dataflow = _one(objects, namespace, "dataflows", _dataflow_doc("single", "single"))
                    dataflow_docs = [_dataflow_doc(f"flow-{i}", f"op-{i}") for i in range(COUNT)]
                    figures.append(
                        _figure("Dataflows", *_burst(objects, namespace, "dataflows", dataflow_docs), one_dataflow)
                    )
                except TimeoutError as exc:
                    failure = f"Dataflows: {exc}"
                finally:
                    kubelet.stop()
                busy = services.rss_bytes(controller.pid)
                peak = services.peak_rss_bytes(controller.pid)
        finally:
            api.close()
    figures.append(
        {
            "name": f"5. controller RSS after {COUNT} WasmModules and {COUNT} Dataflows",
            "unit": "bytes",
            "ours": Sample.of([busy]),
            "comparators": {"idle, just started": Sample.of([idle]), "peak during the bursts": Sample.of([peak])},
            "note": "the wasmflow operator process (Kopf), watching one namespace",
        }
    )
    if failure:
        raise PartialResults(failure, figures)
    return figures
