"""Kopf handlers of the Dataflow controller: thin shells over ``dataflows`` (see its docstring for the design).

Kopf fills every index from its initial listing before any handler runs, so a reconcile at start-up never takes a
module for missing because its watch has not been read yet.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any, cast

import kopf

from wasmflow.operator import kube
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.dataflows import (
    ABSENT,
    MODULE_ANNOTATION_PREFIX,
    ModuleState,
    Outcome,
    module_state,
    reconcile,
    refresh_workers,
    used_modules,
)
from wasmflow.operator.kube import GROUP, VERSION
from wasmflow.operator.metrics import ControllerMetrics
from wasmflow.operator.wasmmodules import ContractChecks, retry_delay

#: Index ids double as the keyword arguments Kopf passes them under, so they are Python identifiers.
MODULES_INDEX = "wasmflow_module_states"
USERS_INDEX = "wasmflow_module_users"


@dataclass(frozen=True)
class ModuleUser:
    """A Dataflow that uses a module, and the stamp of that module it last saw."""

    dataflow: str
    stamp: str | None


def index_module_states(body: kopf.Body, namespace: str | None, name: str | None, **_: Any) -> dict[Any, Any]:
    """(namespace, module) -> ModuleState: what a reconcile reads instead of asking the API."""
    return {(namespace, name): module_state(body)}


def index_module_users(
    spec: kopf.Spec, namespace: str | None, name: str | None, annotations: kopf.Annotations, **_: Any
) -> dict[Any, Any]:
    """(namespace, module) -> the Dataflows using it, each with the module stamp it carries."""
    return {
        (namespace, module): ModuleUser(str(name), annotations.get(MODULE_ANNOTATION_PREFIX + module))
        for module in used_modules(spec)
    }


def _one(index: kopf.Index[Any, Any], key: tuple[str, str]) -> Any:
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


def register_dataflows(
    registry: kopf.OperatorRegistry, config: OperatorConfig, *, checks: ContractChecks | None = None
) -> None:
    """Attach the Dataflow handlers and indexes: reconcile on changes, follow modules and worker Deployments.
    ``checks`` contract-checks the modules of AIO graphs (shared with the WasmModule controller when given)."""
    api = functools.cache(kube.api_client)  # made at its first call, not at registration; then reused
    graph_checks = checks if checks is not None else ContractChecks(concurrency=config.max_concurrent_checks)

    kopf.index(GROUP, VERSION, "wasmmodules", registry=registry, id=MODULES_INDEX)(index_module_states)
    kopf.index(GROUP, VERSION, "dataflows", registry=registry, id=USERS_INDEX)(index_module_users)

    async def reconcile_handler(
        body: kopf.Body, namespace: str | None, memo: kopf.Memo, logger: kopf.Logger, retry: int, **kwargs: Any
    ) -> None:
        states: kopf.Index[Any, ModuleState] = kwargs[MODULES_INDEX]
        metrics: ControllerMetrics | None = getattr(memo, "metrics", None)
        started = time.perf_counter()
        outcome = await reconcile(
            api(), body, lambda module: _one(states, (str(namespace), module)), config, graph_checks
        )
        if outcome is not None:
            _report(body, outcome, logger)
        if metrics:
            metrics.reconciles.labels("Dataflow", outcome.result if outcome else "gone").inc()
            metrics.reconcile_seconds.labels("Dataflow").observe(time.perf_counter() - started)
        if outcome is not None and outcome.retry:
            # Stalled on a Secret or an object outside the Dataflow: look again later, as it heals without an edit.
            raise kopf.TemporaryError(outcome.ready["message"], delay=retry_delay(retry))

    for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
        decorator(GROUP, VERSION, "dataflows", registry=registry, id="reconcile")(reconcile_handler)

    async def module_changed(
        body: kopf.Body, namespace: str | None, name: str | None, type: str | None, **kwargs: Any
    ) -> None:
        """Stamp the module's new state on the Dataflows that use it (each stamp change is an update of one)."""
        if not namespace or not name or type is None:
            return  # the initial listing: on.resume reconciles every Dataflow at start-up anyway
        users: kopf.Index[Any, ModuleUser] = kwargs[USERS_INDEX]
        stamp = ABSENT if type == "DELETED" else module_state(body).stamp
        for user in list(users.get((namespace, name), [])):
            if user.stamp != stamp:
                patch = {"metadata": {"annotations": {MODULE_ANNOTATION_PREFIX + name: stamp}}}
                await kube.patch_custom(api(), namespace, "dataflows", user.dataflow, patch)

    kopf.on.event(GROUP, VERSION, "wasmmodules", registry=registry, id="follow-modules")(module_changed)

    async def deployment_changed(
        body: kopf.Body, namespace: str | None, type: str | None, logger: kopf.Logger, **kwargs: Any
    ) -> None:
        """Copy worker readiness from the Deployment to its Dataflow's status; recreate one deleted by hand."""
        owner = (body.get("metadata", {}).get("labels") or {}).get("wasmflow.io/dataflow")
        if not namespace or not owner:
            return
        if type == "DELETED":
            await workers_deleted(namespace, owner, kwargs[MODULES_INDEX], logger)
            return
        outcome = await refresh_workers(api(), namespace, owner)
        if outcome is not None and outcome.ready_changed:
            dataflow = await kube.get_custom(api(), namespace, "dataflows", owner)
            if dataflow is not None:
                _report(kopf.Body(cast(kopf.RawBody, dataflow)), outcome, logger)

    async def workers_deleted(
        namespace: str, name: str, states: kopf.Index[Any, ModuleState], logger: kopf.Logger
    ) -> None:
        """A worker Deployment is gone while its Dataflow is not being deleted (someone deleted it, or a cleanup
        tool did): reconcile the Dataflow now, so its workers come back without waiting for its next change."""
        dataflow = await kube.get_custom(api(), namespace, "dataflows", name)
        if dataflow is None or (dataflow.get("metadata") or {}).get("deletionTimestamp"):
            return  # deleted with its Dataflow: the garbage collector's work
        logger.info("the worker Deployment of Dataflow %s/%s was deleted: recreating it", namespace, name)
        body = kopf.Body(cast(kopf.RawBody, dataflow))
        outcome = await reconcile(api(), body, lambda module: _one(states, (namespace, module)), config)
        if outcome is not None:
            _report(body, outcome, logger)

    kopf.on.event(
        "apps",
        "v1",
        "deployments",
        registry=registry,
        id="follow-workers",
        labels={"app.kubernetes.io/managed-by": "wasmflow"},
    )(deployment_changed)


def _report(body: kopf.Body, outcome: Outcome, logger: kopf.Logger) -> None:
    """A Kubernetes Event when Ready changes (a warning when the user must act), and a log line always."""
    ready = outcome.ready
    if outcome.ready_changed:
        if outcome.result == "stalled":
            kopf.warn(body, reason=ready["reason"], message=ready["message"])
        else:
            kopf.info(body, reason=ready["reason"], message=ready["message"])
    logger.info("Dataflow %s: %s (%s)", outcome.result, ready["reason"], ready["message"])
