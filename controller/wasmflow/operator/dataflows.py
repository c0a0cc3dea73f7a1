"""The Dataflow controller: resolve the modules, validate the graph, apply the worker children, report status.

Level-based and idempotent: every reconcile renders the full desired state and server-side applies it, so a
restart, a retry or a duplicate event converges to the same objects. What re-triggers a reconcile:
- the Dataflow changes (Kopf create/update/resume);
- a WasmModule it uses becomes Ready or changes digest: the WasmModule watcher stamps an annotation
  ``modules.wasmflow.io/<module>`` on the Dataflows that use it, which is an update of the Dataflow;
- the worker Deployment's status changes: only ``status.workers`` and the Ready condition are refreshed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client
from pydantic import ValidationError

from wasmflow.api import status as conditions
from wasmflow.api.dataflow import Dataflow
from wasmflow.api.graph import GraphError, validate_graph
from wasmflow.api.wasmmodule import WasmModule
from wasmflow.operator import kube
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.render import render

MODULE_ANNOTATION_PREFIX = "modules.wasmflow.io/"


@dataclass(frozen=True)
class Outcome:
    """What a reconcile decided, as the status fields to write."""

    status: dict[str, Any]
    result: str  # ready | waiting | stalled


def _ready_condition(module: dict[str, Any]) -> dict[str, Any] | None:
    for condition in module.get("status", {}).get("conditions", []):
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


async def reconcile(api: client.ApiClient, body: dict[str, Any], config: OperatorConfig) -> Outcome:
    current = dict(body.get("status") or {})
    generation = body.get("metadata", {}).get("generation")
    existing = current.get("conditions", [])
    try:
        dataflow = Dataflow.model_validate({k: v for k, v in body.items() if k != "status"})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = f"{where}: {first['msg']}"
        return Outcome(
            _status(current, conditions.stalled(existing, "InvalidSpec", message, generation), generation), "stalled"
        )
    try:
        validate_graph(dataflow.spec)
    except GraphError as exc:
        message = "; ".join(f"{p.where}: {p.message}" for p in exc.problems)
        return Outcome(
            _status(current, conditions.stalled(existing, "InvalidGraph", message, generation), generation), "stalled"
        )
    namespace = dataflow.metadata.namespace or "default"
    modules: dict[str, WasmModule] = {}
    digests: dict[str, str] = {}
    waiting: list[str] = []
    for name in sorted({n.module for n in dataflow.spec.nodes if n.module}):
        raw = await kube.get_custom(api, namespace, "wasmmodules", name)
        if raw is None:
            waiting.append(f"WasmModule {name!r} does not exist in namespace {namespace}")
            continue
        ready = _ready_condition(raw)
        digest = raw.get("status", {}).get("artifact", {}).get("digest")
        if not ready or ready.get("status") != "True" or not digest:
            detail = f": {ready['reason']}: {ready.get('message', '')}" if ready else ""
            waiting.append(f"WasmModule {name!r} is not Ready{detail}")
            continue
        modules[name] = WasmModule.model_validate({k: v for k, v in raw.items() if k != "status"})
        digests[name] = digest
    if waiting:
        message = "; ".join(waiting)
        updated = conditions.set_condition(
            conditions.set_condition(existing, "Reconciling", "True", "ModuleNotReady", message, generation),
            "Ready",
            "False",
            "ModuleNotReady",
            message,
            generation,
        )
        updated = conditions.remove_condition(updated, "Stalled")
        return Outcome(_status(current, updated, generation), "waiting")
    children = render(dataflow, modules, digests, config)
    for manifest in (children.config_map, children.service, children.deployment):
        await kube.apply(api, manifest)
    current["modules"] = [{"name": n, "digest": digests[n]} for n in sorted(digests)]
    current["configHash"] = children.config_hash
    desired = dataflow.spec.replicas
    current["workers"] = {"desired": desired, "ready": int((current.get("workers") or {}).get("ready", 0))}
    updated = workers_conditions(existing, desired, current["workers"]["ready"], generation)
    result = "ready" if updated[0]["status"] == "True" else "waiting"
    return Outcome(_status(current, updated, generation), result)


def workers_conditions(
    existing: list[dict[str, Any]], desired: int, ready: int, generation: int | None
) -> list[dict[str, Any]]:
    """Ready when every desired worker is ready; until then Reconciling, waiting for them."""
    if ready >= desired:
        return conditions.ready(existing, f"{ready}/{desired} worker(s) ready", generation)
    message = f"waiting for workers: {ready}/{desired} ready"
    updated = conditions.set_condition(existing, "Reconciling", "True", "WorkersNotReady", message, generation)
    updated = conditions.remove_condition(updated, "Stalled")
    return conditions.set_condition(updated, "Ready", "False", "WorkersNotReady", message, generation)


def _status(current: dict[str, Any], updated: list[dict[str, Any]], generation: int | None) -> dict[str, Any]:
    return {**current, "observedGeneration": generation, "conditions": updated}


def uses_module(dataflow: dict[str, Any], module: str) -> bool:
    return any(node.get("module") == module for node in dataflow.get("spec", {}).get("nodes", []))
