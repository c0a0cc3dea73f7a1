"""The Dataflow controller: resolve the modules, validate the graph, apply the worker children, report status.

Level-based and idempotent: every reconcile renders the full desired state and server-side applies it, so a
restart, a retry or a duplicate event converges to the same objects. The decisions are pure functions (``plan``,
the ``status_*`` functions); the async shell around them only reads, applies and writes. What the shell reads
besides the API: the registry CA file (copied into the worker ConfigMap), and, for a Dataflow with ``spec.graph``,
the registry, to pin the graph artifact and each of its ``repository:tag`` modules to a digest
(``resolve_graph``). A moved tag is picked up at the next reconcile, never by a worker on its own.

What re-triggers a reconcile:
- the Dataflow changes (Kopf create/update/resume);
- a WasmModule it uses appears, disappears, becomes Ready or changes digest. The controller keeps two Kopf
  indexes: WasmModule states by (namespace, name), which the reconcile reads instead of asking the API, and the
  Dataflows that use each module. Kopf cannot re-queue an object, so a module change stamps an annotation
  ``modules.wasmflow.io/<module>`` (the module's digest, or ``not-ready:<Reason>``, or ``absent``) on each user:
  that is an update of the Dataflow, handled in order with its other updates. A stamp is written only when it
  changes, so status rewrites of a module that stays the same cost nothing.
- the worker Deployment's status changes: only ``status.workers`` and the worker-derived Ready condition are
  refreshed (``refresh_workers``).

Two writers share the status (the reconcile and the worker follower), so both read the Dataflow and the
Deployment fresh, compute, and patch under a resourceVersion precondition, recomputing when they lose the race.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kubernetes import client
from pydantic import ValidationError

from wasmflow.api import status as conditions
from wasmflow.api.common import format_path
from wasmflow.api.dataflow import Dataflow
from wasmflow.api.dataflow_graph import DataflowGraph
from wasmflow.api.frontends import spec_graph
from wasmflow.api.frontends.aio import definition_graph, parse_graph
from wasmflow.api.graph import Graph, GraphError
from wasmflow.api.kinds import OperatorKind
from wasmflow.api.wasmmodule import WasmModule
from wasmflow.api.workerconfig import PinnedGraph, PinnedGraphModule
from wasmflow.api.yaml_input import MAX_GRAPH_BYTES
from wasmflow.errors import ConfigError, WasmflowError
from wasmflow.oci import OciError
from wasmflow.oci.pull import Access, pull_artifact, pull_graph
from wasmflow.operator import kube, verification
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.mqtt_credentials import check_credentials
from wasmflow.operator.ownership import foreign_child
from wasmflow.operator.render import CONFIG_HASH, Children, child_name, render
from wasmflow.operator.wasmmodules import ContractChecks, trim_cache

MODULE_ANNOTATION_PREFIX = "modules.wasmflow.io/"
#: The stamp of a module that does not exist (deleted, or never created).
ABSENT = "absent"
#: Ready reasons that the worker Deployment decides (the follower may change them; it leaves all others alone).
WORKER_REASONS = ("Succeeded", "WorkersNotReady")
STATUS_ATTEMPTS = 5
#: Flux's manual re-sync request; any change of it is an update of the Dataflow, hence a reconcile.
RECONCILE_REQUEST = "reconcile.fluxcd.io/requestedAt"


class StatusConflictError(WasmflowError):
    """The Dataflow's status kept changing under us; Kopf retries the handler."""


@dataclass(frozen=True)
class ModuleState:
    """One WasmModule as the Dataflow controller sees it: the value kept in the Kopf index."""

    name: str
    #: The parsed resource, or None when its spec does not parse (then it is never Ready).
    module: WasmModule | None
    #: Ready=True for its current generation, with a verified artifact digest.
    ready: bool
    #: Stalled=True: only a fix of the WasmModule helps.
    stalled: bool
    digest: str | None
    reason: str
    message: str

    @property
    def stamp(self) -> str:
        """What the Dataflows using it remember of it: a change of this re-reconciles them."""
        return self.digest if self.ready and self.digest else f"not-ready:{self.reason}"


def _condition(body: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_:
            return dict(condition)
    return None


def module_state(body: Mapping[str, Any]) -> ModuleState:
    """The state of a WasmModule from its body (pure: used by the index handler)."""
    name = str(body.get("metadata", {}).get("name", ""))
    try:
        module: WasmModule | None = WasmModule.model_validate({k: v for k, v in body.items() if k != "status"})
    except ValidationError:
        module = None
    status = body.get("status") or {}
    ready = _condition(body, "Ready")
    stalled = _condition(body, "Stalled")
    digest = (status.get("artifact") or {}).get("digest")
    current = status.get("observedGeneration") == body.get("metadata", {}).get("generation")
    if module is None:
        return ModuleState(name, None, False, True, digest, "InvalidSpec", "the WasmModule's spec does not parse")
    if ready is None:
        return ModuleState(name, module, False, False, digest, "Pending", "not reconciled yet")
    is_ready = ready.get("status") == "True" and bool(digest) and current
    reason = str(ready.get("reason") or "Unknown")
    message = str(ready.get("message") or "")
    if ready.get("status") == "True" and not current:
        reason, message = "Progressing", "its new generation is not reconciled yet"
    is_stalled = stalled is not None and stalled.get("status") == "True"
    return ModuleState(name, module, is_ready, is_stalled, digest if is_ready else None, reason, message)


@dataclass(frozen=True)
class Stalled:
    """Only the user can fix this: a bad spec or graph, a missing or failed module."""

    reason: str
    message: str
    #: The fix is outside the Dataflow (a Secret's opt-in, a foreign object in the way): no edit of the Dataflow
    #: will come to re-trigger it, so the reconcile is retried with backoff until it heals.
    retry: bool = False


@dataclass(frozen=True)
class Waiting:
    """May heal by itself: a module being pulled or re-checked."""

    reason: str
    message: str


@dataclass(frozen=True)
class Apply:
    """Everything resolved: apply these children."""

    children: Children
    digests: dict[str, str]


Plan = Stalled | Waiting | Apply
ModuleLookup = Callable[[str], ModuleState | None]


def _graph_message(exc: GraphError) -> str:
    return "; ".join(f"{p.where}: {p.message}" for p in exc.problems)


GraphResolution = PinnedGraph | Stalled | Waiting | None


def plan(
    body: Mapping[str, Any],
    lookup: ModuleLookup,
    config: OperatorConfig,
    *,
    registry_ca: bytes | None = None,
    graph: GraphResolution = None,
) -> Plan:
    """What to do with this Dataflow, given the modules ``lookup`` knows (pure).

    ``registry_ca`` is the content of ``config.registry_ca_file``; ``graph`` what ``resolve_graph`` made of
    ``spec.graph`` (its artifact and modules pinned by digest, or why they are not).
    """
    try:
        dataflow = Dataflow.model_validate({k: v for k, v in body.items() if k != "status"})
    except ValidationError as exc:
        first = exc.errors()[0]
        return Stalled("InvalidSpec", f"{format_path(list(first['loc']))}: {first['msg']}")
    try:
        spec_graph(dataflow.spec)
    except GraphError as exc:
        return Stalled("InvalidGraph", _graph_message(exc))
    if dataflow.spec.graph is not None:
        if graph is None:
            return Waiting("GraphNotResolved", "the graph's modules are not resolved to digests yet")
        if not isinstance(graph, PinnedGraph):
            return graph
        graph_digests = {name: module.digest for name, module in graph.modules.items()}
        return Apply(render(dataflow, {}, {}, config, registry_ca=registry_ca, graph=graph), graph_digests)
    namespace = dataflow.metadata.namespace or "default"
    used: dict[str, list[str]] = {}
    for node in dataflow.spec.nodes:
        if node.module:
            used.setdefault(node.module, []).append(node.name)
    states = {name: lookup(name) for name in sorted(used)}
    missing = [
        f"WasmModule {name} (used by node {', '.join(used[name])}) does not exist in namespace {namespace}"
        for name, state in states.items()
        if state is None
    ]
    if missing:
        return Stalled("ModuleNotFound", "; ".join(missing) + ": create it, or fix the node's module")
    found = {name: state for name, state in states.items() if state is not None}
    # A module whose spec does not parse has no kind to compare: it is reported as failed just below.
    kinds = {n: s.module.spec.operator if s.module else _expected_kind(dataflow, n) for n, s in found.items()}
    try:
        spec_graph(dataflow.spec, kinds)
    except GraphError as exc:
        return Stalled("ModuleKindMismatch", _graph_message(exc))
    failed = [s for s in found.values() if not s.ready and s.stalled]
    if failed:
        text = "; ".join(f"WasmModule {s.name} is Stalled: {s.reason}: {s.message}" for s in failed)
        return Stalled("ModuleFailed", text + ": fix the WasmModule")
    waiting = [s for s in found.values() if not s.ready]
    if waiting:
        text = "; ".join(f"WasmModule {s.name} is not Ready: {s.reason}: {s.message}".rstrip(": ") for s in waiting)
        return Waiting("ModuleNotReady", text)
    modules = {n: s.module for n, s in found.items() if s.module is not None}
    digests = {n: s.digest for n, s in found.items() if s.digest is not None}
    return Apply(render(dataflow, modules, digests, config, registry_ca=registry_ca), digests)


def _access(insecure: bool, config: OperatorConfig) -> Access:
    return Access(insecure=insecure, ca_file=config.registry_ca_file, timeout=config.request_timeout)


def _registry_failure(exc: OciError, what: str) -> Stalled | Waiting:
    if exc.transient:
        return Waiting(exc.reason, f"{what}: {exc}")
    return Stalled(exc.reason, f"{what}: {exc}: fix spec.graph, or push it there")


async def _resolve(body: Mapping[str, Any], config: OperatorConfig, checks: ContractChecks) -> GraphResolution:
    """``resolve_graph`` of the Dataflow's ``spec.graph``; None without one (or when it does: ``plan`` says why)."""
    try:
        dataflow = Dataflow.model_validate({k: v for k, v in body.items() if k != "status"})
    except ValidationError:
        return None
    return None if dataflow.spec.graph is None else await resolve_graph(dataflow.spec.graph, config, checks)


async def resolve_graph(
    graph: DataflowGraph, config: OperatorConfig, checks: ContractChecks | None = None
) -> PinnedGraph | Stalled | Waiting:
    """Pin ``spec.graph``: the artifact's digest, and the digest each ``repository:tag`` module names now.

    The workers pull exactly these digests, so replicas started after a tag moves run what the others run; the
    tags are resolved again at each reconcile. Each module is pulled in full (into the controller's cache), so a
    digest is pinned only for content that verified, and checked against the AIO contract for every operation
    that uses it (``checks``: the WasmModule controller's, so the same bytes are never checked twice): a module
    a worker would refuse makes the Dataflow Stalled/ContractViolation instead of a crash-looping worker.
    """
    artifact: str | None = None
    where = "spec.graph.definition"
    if graph.definition is not None:
        definition = graph.definition
    else:
        assert graph.artifact is not None  # the model allows exactly one of them
        reference = graph.artifact.reference
        try:
            pulled = await pull_graph(
                await verification.required_signature(reference, _access(graph.artifact.insecure, config), config),
                access=_access(graph.artifact.insecure, config),
                cache_dir=config.cache_dir,
                max_bytes=MAX_GRAPH_BYTES,
            )
        except OciError as exc:
            return _registry_failure(exc, f"graph artifact {reference}")
        except verification.PolicyError as exc:
            return Stalled(exc.reason, f"graph artifact {reference}: {exc.message}")
        artifact = str(pulled.reference.with_tag(None).with_digest(pulled.manifest_digest or pulled.digest))
        where = f"graph artifact {reference}"
        try:
            definition = pulled.data.decode("utf-8")
        except UnicodeDecodeError:
            return Stalled("InvalidGraph", f"graph artifact {reference}: the definition is not UTF-8 text")
    try:
        graph_ir = definition_graph(parse_graph(definition, where))
    except GraphError as exc:
        return Stalled("InvalidGraph", _graph_message(exc))
    except ConfigError as exc:
        return Stalled("InvalidGraph", str(exc))
    modules: dict[str, PinnedGraphModule] = {}
    for name in graph_ir.order:
        module = graph_ir.nodes[name].module
        if not module or module in modules:
            continue
        if not graph.registry:
            return Stalled("InvalidGraph", f"operation {name} names module {module!r}: set spec.graph.registry")
        reference = f"{graph.registry.rstrip('/')}/{module}"
        try:
            component = await pull_artifact(
                await verification.required_signature(reference, _access(graph.insecure, config), config),
                access=_access(graph.insecure, config),
                cache_dir=config.cache_dir,
                max_bytes=config.max_module_bytes,
            )
        except OciError as exc:
            return _registry_failure(exc, f"module {module!r} of operation {name} ({reference})")
        except verification.PolicyError as exc:
            return Stalled(exc.reason, f"module {module!r} of operation {name} ({reference}): {exc.message}")
        if not component.from_cache:
            await trim_cache(config)
        report = await (checks or ContractChecks()).report(component.digest, component.data, config.max_module_bytes)
        violations = [
            f"module {module!r} ({component.digest}) of operation {user} ({operation}): {problem}"
            for user, operation in _operations_of(graph_ir, module)
            for problem in report.aio_problems(operation)
        ]
        if violations:
            # The fix is a module pushed under the same tag, outside the Dataflow: retried until it heals.
            return Stalled("ContractViolation", "; ".join(violations) + ": fix the module or the graph", retry=True)
        modules[module] = PinnedGraphModule(reference=reference, digest=component.digest, insecure=graph.insecure)
    return PinnedGraph(artifact=artifact, modules=modules)


def _operations_of(graph_ir: Graph, module: str) -> list[tuple[str, str]]:
    """(operation name, operation type) of every operation of the graph that runs ``module``."""
    return [(name, graph_ir.nodes[name].step.value) for name in graph_ir.order if graph_ir.nodes[name].module == module]


async def read_registry_ca(config: OperatorConfig) -> bytes | None:
    """The registry CA the workers are given, read at each reconcile so that a rotated one reaches them."""
    path = config.registry_ca_file
    if path is None:
        return None
    try:
        return await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise ConfigError(f"cannot read the registry CA: {exc.strerror}", where=str(path)) from exc


def _expected_kind(dataflow: Dataflow, module: str) -> OperatorKind:
    node = next(n for n in dataflow.spec.nodes if n.module == module)
    return OperatorKind(node.type.value)


@dataclass(frozen=True)
class WorkerCounts:
    desired: int
    ready: int
    #: The Deployment runs only pods of its current template (``kubectl rollout status`` would return).
    rolled_out: bool


def worker_counts(deployment: Mapping[str, Any] | None, desired: int) -> WorkerCounts:
    """Workers wanted and ready from the Deployment; ready counts only when the rollout of the config is done."""
    if deployment is None:
        return WorkerCounts(desired, 0, False)
    spec_replicas = int((deployment.get("spec") or {}).get("replicas", desired))
    status = deployment.get("status") or {}
    observed = int(status.get("observedGeneration") or 0) >= int(deployment.get("metadata", {}).get("generation") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    rolled_out = observed and updated >= spec_replicas and int(status.get("replicas") or 0) == updated
    if rolled_out:
        return WorkerCounts(spec_replicas, ready, True)
    # Mid-rollout, ready pods may run the old config: count at most the updated ones.
    return WorkerCounts(spec_replicas, min(ready, updated) if observed else 0, False)


def workers_conditions(
    existing: list[dict[str, Any]], counts: WorkerCounts, generation: int | None
) -> list[dict[str, Any]]:
    """Ready when every desired worker runs the current config and is ready; until then Reconciling."""
    if counts.rolled_out and counts.ready >= counts.desired:
        return conditions.ready(existing, f"{counts.ready}/{counts.desired} worker(s) ready", generation)
    message = f"waiting for workers: {counts.ready}/{counts.desired} ready"
    updated = conditions.set_condition(existing, "Reconciling", "True", "WorkersNotReady", message, generation)
    updated = conditions.remove_condition(updated, "Stalled")
    return conditions.set_condition(updated, "Ready", "False", "WorkersNotReady", message, generation)


def status_for_plan(current: Mapping[str, Any], decided: Stalled | Waiting, generation: int | None) -> dict[str, Any]:
    """Status for a Dataflow that is not applied: what ran before keeps running, and the conditions say why."""
    existing = list(current.get("conditions") or [])
    if isinstance(decided, Stalled):
        updated = conditions.stalled(existing, decided.reason, decided.message, generation)
    else:
        updated = conditions.retrying(existing, decided.reason, decided.message, generation)
    return {**current, "observedGeneration": generation, "conditions": updated}


def status_for_apply(
    current: Mapping[str, Any], applied: Apply, counts: WorkerCounts, generation: int | None
) -> dict[str, Any]:
    """Status for an applied Dataflow: pinned modules, the config hash, the workers of that config and their selector
    (the scale subresource's)."""
    match_labels = applied.children.deployment["spec"]["selector"]["matchLabels"]
    return {
        **current,
        "observedGeneration": generation,
        "modules": [{"name": n, "digest": applied.digests[n]} for n in sorted(applied.digests)],
        "configHash": applied.children.config_hash,
        "workers": {"desired": counts.desired, "ready": counts.ready},
        "selector": ",".join(f"{key}={value}" for key, value in sorted(match_labels.items())),
        "conditions": workers_conditions(list(current.get("conditions") or []), counts, generation),
    }


def status_for_workers(current: Mapping[str, Any], deployment: Mapping[str, Any]) -> dict[str, Any] | None:
    """Status after a change of the worker Deployment, or None when it is not ours to change.

    A Deployment of another config (an event older than the last apply) changes nothing; a Ready condition that
    another reason owns (Stalled on a bad edit, a module not ready) keeps it, and only the counts move.
    """
    config_hash = current.get("configHash")
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    if not config_hash or (template.get("annotations") or {}).get(CONFIG_HASH) != config_hash:
        return None
    counts = worker_counts(deployment, int((current.get("workers") or {}).get("desired", 0)))
    updated = dict(current)
    updated["workers"] = {"desired": counts.desired, "ready": counts.ready}
    generation = current.get("observedGeneration")
    existing = list(current.get("conditions") or [])
    ready = next((c for c in existing if c.get("type") == "Ready"), None)
    if ready is not None and ready.get("reason") in WORKER_REASONS and ready.get("observedGeneration") == generation:
        updated["conditions"] = workers_conditions(existing, counts, generation)
    return updated if updated != dict(current) else None


@dataclass(frozen=True)
class Outcome:
    """What a reconcile decided and wrote."""

    status: dict[str, Any]
    previous: dict[str, Any]
    result: str  # ready | waiting | stalled
    #: Stalled on something outside the Dataflow: the handler retries with backoff (``Stalled.retry``).
    retry: bool = False

    @property
    def ready(self) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == "Ready")

    @property
    def ready_changed(self) -> bool:
        before = next((c for c in self.previous.get("conditions") or [] if c.get("type") == "Ready"), None)
        after = self.ready
        return before is None or (before.get("status"), before.get("reason")) != (after["status"], after["reason"])


Compose = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any] | None]]


async def write_status(api: client.ApiClient, namespace: str, name: str, compose: Compose) -> Outcome | None:
    """Read the Dataflow, compose its new status, patch it under the read's resourceVersion; retry on conflicts."""
    for _ in range(STATUS_ATTEMPTS):
        fresh = await kube.get_custom(api, namespace, "dataflows", name)
        if fresh is None or fresh.get("metadata", {}).get("deletionTimestamp"):
            return None
        previous = dict(fresh.get("status") or {})
        new = await compose(fresh)
        if new is None or new == previous:
            return Outcome(previous, previous, _result(previous)) if previous.get("conditions") else None
        version = fresh["metadata"]["resourceVersion"]
        if await kube.patch_custom_status_at(api, namespace, "dataflows", name, new, version):
            return Outcome(new, previous, _result(new))
    raise StatusConflictError(f"Dataflow {namespace}/{name}: status changed {STATUS_ATTEMPTS} times while writing it")


def _result(status: Mapping[str, Any]) -> str:
    by_type = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if by_type.get("Stalled") == "True":
        return "stalled"
    return "ready" if by_type.get("Ready") == "True" else "waiting"


async def reconcile(
    api: client.ApiClient,
    body: Mapping[str, Any],
    lookup: ModuleLookup,
    config: OperatorConfig,
    checks: ContractChecks | None = None,
) -> Outcome | None:
    """Plan, apply the children if the plan says so, and write the status that follows. ``checks`` shares contract
    verdicts (and the compile slot) with the WasmModule controller; one of its own when None."""
    metadata = body.get("metadata", {})
    namespace, name = metadata.get("namespace") or "default", metadata["name"]
    generation = metadata.get("generation")
    registry_ca = await read_registry_ca(config)
    decided: Plan = plan(
        body, lookup, config, registry_ca=registry_ca, graph=await _resolve(body, config, checks or ContractChecks())
    )
    if isinstance(decided, Apply):
        decided = await guard(api, body, decided)
    if isinstance(decided, Apply):
        for manifest in (decided.children.config_map, decided.children.service, decided.children.deployment):
            await kube.apply(api, manifest)

    async def compose(fresh: Mapping[str, Any]) -> dict[str, Any] | None:
        current = dict(fresh.get("status") or {})
        if (current.get("observedGeneration") or 0) > (generation or 0):
            return None  # a newer generation was already judged
        if requested := (metadata.get("annotations") or {}).get(RECONCILE_REQUEST):
            current["lastHandledReconcileAt"] = requested  # Flux's `flux reconcile` waits for this echo
        if not isinstance(decided, Apply):
            return status_for_plan(current, decided, generation)
        deployment = await kube.get_deployment(api, namespace, child_name(name))
        replicas = int(decided.children.deployment["spec"]["replicas"])
        return status_for_apply(current, decided, worker_counts(deployment, replicas), generation)

    outcome = await write_status(api, namespace, name, compose)
    if isinstance(decided, Stalled) and decided.retry and outcome is not None:
        return replace(outcome, retry=True)
    if not isinstance(decided, Apply) or outcome is None:
        return outcome
    # The Deployment may have become ready between compose's read of it and the status write; its watch event then
    # met a status without this config hash and was ignored, and no later event would come. One more read after the
    # write closes that window (seen with 7 of 100 Dataflows whose Deployments turned ready at once); every later
    # change of the Deployment arrives as an event that finds the hash.
    refreshed = await refresh_workers(api, namespace, name)
    if refreshed is None or refreshed.status == outcome.status:
        return outcome
    return Outcome(refreshed.status, outcome.previous, refreshed.result)


async def guard(api: client.ApiClient, body: Mapping[str, Any], applied: Apply) -> Apply | Stalled:
    """What the API holds may forbid an apply that the spec allows: credentials Secrets whose owner did not allow
    the endpoint's broker (``mqtt_credentials``), and existing objects of the children's names that are not this
    Dataflow's (``ownership``). Either is Stalled, naming the Secret or the object, and retried."""
    dataflow = Dataflow.model_validate({k: v for k, v in body.items() if k != "status"})
    namespace, name = dataflow.metadata.namespace or "default", dataflow.metadata.name
    annotations: dict[str, Mapping[str, str] | None] = {}
    try:
        for endpoint in dataflow.spec.endpoints.values():
            ref = endpoint.mqtt.credentials_secret_ref
            if ref is not None and ref.name not in annotations:
                secret = await kube.get_secret(api, namespace, ref.name)
                annotations[ref.name] = None if secret is None else secret.annotations
        refusal = check_credentials(dataflow, annotations)
        if refusal is not None:
            return Stalled(refusal.reason, refusal.message, retry=True)
        children = applied.children
        for manifest in (children.config_map, children.service, children.deployment):
            kind, child = manifest["kind"], manifest["metadata"]["name"]
            problem = foreign_child(kind, child, await kube.get_owner_references(api, kind, namespace, child), name)
            if problem is not None:
                return Stalled("ChildNotOwned", problem, retry=True)
    except kube.AccessDenied as exc:
        return Stalled(
            "Forbidden",
            f"the controller may not {exc.verb} {exc.resource} {exc.name} in namespace {exc.namespace} "
            f"({exc.server_message}): grant its ServiceAccount that verb",
            retry=True,
        )
    return applied


async def refresh_workers(api: client.ApiClient, namespace: str, dataflow: str) -> Outcome | None:
    """Copy the worker Deployment's readiness into the Dataflow's status (no re-render)."""

    async def compose(fresh: Mapping[str, Any]) -> dict[str, Any] | None:
        deployment = await kube.get_deployment(api, namespace, child_name(dataflow))
        return None if deployment is None else status_for_workers(dict(fresh.get("status") or {}), deployment)

    return await write_status(api, namespace, dataflow, compose)


def used_modules(spec: Mapping[str, Any]) -> list[str]:
    """The module names a raw Dataflow spec refers to (for the index: the body may not even parse)."""
    names = {node.get("module") for node in spec.get("nodes") or [] if isinstance(node, Mapping)}
    return sorted(n for n in names if isinstance(n, str) and n)
