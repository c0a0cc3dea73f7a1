"""Kopf handlers of the Dataflow controller: thin shells over ``dataflows.reconcile``."""

from __future__ import annotations

import time
from typing import Any

import kopf
from kubernetes import client

from wasmflow.operator import kube
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.dataflows import MODULE_ANNOTATION_PREFIX, reconcile, uses_module, workers_conditions
from wasmflow.operator.metrics import ControllerMetrics


def register_dataflows(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """Attach the Dataflow handlers: reconcile on changes, follow modules and worker Deployments."""
    resource = ("wasmflow.io", "v1alpha1", "dataflows")
    api_holder: dict[str, client.ApiClient] = {}

    def api() -> client.ApiClient:
        if "api" not in api_holder:
            api_holder["api"] = kube.api_client()
        return api_holder["api"]

    async def reconcile_handler(
        body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: kopf.Logger, **_: Any
    ) -> None:
        metrics: ControllerMetrics | None = getattr(memo, "metrics", None)
        started = time.perf_counter()
        outcome = await reconcile(api(), dict(body), config)
        patch.status.update(outcome.status)
        ready = next(c for c in outcome.status["conditions"] if c["type"] == "Ready")
        previous = next((c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), None)
        if previous is None or (previous.get("status"), previous.get("reason")) != (ready["status"], ready["reason"]):
            if outcome.result == "stalled":
                kopf.warn(body, reason=ready["reason"], message=ready["message"])
            else:
                kopf.info(body, reason=ready["reason"], message=ready["message"])
        if metrics:
            metrics.reconciles.labels("Dataflow", outcome.result).inc()
            metrics.reconcile_seconds.labels("Dataflow").observe(time.perf_counter() - started)
        logger.info("reconciled: %s (%s)", outcome.result, ready["message"])

    for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
        decorator(*resource, registry=registry, id="reconcile")(reconcile_handler)

    async def module_changed(body: kopf.Body, namespace: str | None, **_: Any) -> None:
        """Stamp the module's digest (or not-ready) on the Dataflows that use it: an update of each."""
        if not namespace:
            return
        name = body["metadata"]["name"]
        status = body.get("status") or {}
        ready: dict[str, Any] = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), {})
        stamp = status.get("artifact", {}).get("digest", "none") if ready.get("status") == "True" else "not-ready"
        key = MODULE_ANNOTATION_PREFIX + name
        for dataflow in await kube.list_custom(api(), namespace, "dataflows"):
            annotations = dataflow.get("metadata", {}).get("annotations") or {}
            if uses_module(dataflow, name) and annotations.get(key) != stamp:
                patch = {"metadata": {"annotations": {key: stamp}}}
                await kube.patch_custom(api(), namespace, "dataflows", dataflow["metadata"]["name"], patch)

    kopf.on.event("wasmflow.io", "v1alpha1", "wasmmodules", registry=registry, id="follow-modules")(module_changed)

    async def deployment_changed(body: kopf.Body, namespace: str | None, type: str | None, **_: Any) -> None:
        """Copy worker readiness from the Deployment to the Dataflow's status (no re-render)."""
        if not namespace or type == "DELETED":
            return
        owner = body.get("metadata", {}).get("labels", {}).get("wasmflow.io/dataflow")
        dataflow = await kube.get_custom(api(), namespace, "dataflows", owner) if owner else None
        if dataflow is None:
            return
        status = dataflow.get("status") or {}
        if not status.get("configHash"):
            return  # not applied yet (or waiting for modules): the reconcile owns those conditions
        desired = int(body.get("spec", {}).get("replicas", 0))
        ready = int((body.get("status") or {}).get("readyReplicas") or 0)
        if status.get("workers") == {"desired": desired, "ready": ready}:
            return
        generation = status.get("observedGeneration")
        updated = workers_conditions(status.get("conditions", []), desired, ready, generation)
        body_patch = {"status": {"workers": {"desired": desired, "ready": ready}, "conditions": updated}}
        await kube.patch_custom_status(api(), namespace, "dataflows", owner, body_patch)

    kopf.on.event(
        "apps",
        "v1",
        "deployments",
        registry=registry,
        id="follow-workers",
        labels={"app.kubernetes.io/managed-by": "wasmflow"},
    )(deployment_changed)
