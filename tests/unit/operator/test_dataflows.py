"""The Dataflow controller's decisions, as pure functions: module states, the plan, and the status that follows."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from wasmflow.api.workerconfig import PinnedGraph, PinnedGraphModule
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.dataflows import (
    Apply,
    Stalled,
    Waiting,
    WorkerCounts,
    module_state,
    plan,
    status_for_apply,
    status_for_plan,
    status_for_workers,
    worker_counts,
)
from wasmflow.operator.render import CONFIG_HASH

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "manifests"
DIGEST = "sha256:" + "ab" * 32


def dataflow_body() -> dict[str, Any]:
    (doc,) = yaml.safe_load_all((EXAMPLES / "dataflow.yaml").read_text())
    doc["metadata"].update(namespace="plant", uid="u-1", generation=3)
    return dict(doc)


def module_body(name: str, *, ready: str = "True", reason: str = "Succeeded", generation: int = 1) -> dict[str, Any]:
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all((EXAMPLES / "wasmmodules.yaml").read_text())}
    doc = copy.deepcopy(docs[name])
    doc["metadata"].update(namespace="plant", generation=generation)
    doc["status"] = {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": ready,
                "reason": reason,
                "message": "m",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
        "artifact": {"digest": DIGEST, "size": 1, "mediaType": "application/wasm", "fetchedAt": "2026-01-01T00:00:00Z"},
    }
    return dict(doc)


MODULES = ("enrich", "to-celsius", "in-range", "overheat", "window-average")


def lookup(**overrides: dict[str, Any] | None) -> Any:
    states = {name: module_state(module_body(name)) for name in MODULES}
    for name, body in overrides.items():
        states.pop(name.replace("_", "-"))
        if body is not None:
            states[name.replace("_", "-")] = module_state(body)
    return states.get


def test_a_ready_module_of_its_current_generation_is_stamped_with_its_digest() -> None:
    state = module_state(module_body("enrich"))
    assert (state.ready, state.digest, state.stamp) == (True, DIGEST, DIGEST)


def test_a_module_whose_new_generation_is_not_reconciled_yet_is_not_ready() -> None:
    state = module_state(module_body("enrich", generation=2))
    assert (state.ready, state.reason, state.stamp) == (False, "Progressing", "not-ready:Progressing")


def test_a_module_never_reconciled_is_pending() -> None:
    body = module_body("enrich")
    del body["status"]
    assert module_state(body).stamp == "not-ready:Pending"


def test_a_dataflow_whose_modules_are_ready_is_applied_with_their_digests() -> None:
    decided = plan(dataflow_body(), lookup(), OperatorConfig())
    assert isinstance(decided, Apply)
    assert decided.digests == dict.fromkeys(MODULES, DIGEST)
    assert decided.children.deployment["metadata"]["annotations"][CONFIG_HASH] == decided.children.config_hash


def test_a_cycle_is_stalled_as_an_invalid_graph_naming_the_node() -> None:
    body = dataflow_body()
    body["spec"]["edges"].append({"from": "in-range", "to": "enrich"})
    decided = plan(body, lookup(), OperatorConfig())
    assert isinstance(decided, Stalled)
    assert decided.reason == "InvalidGraph"
    assert "spec.nodes[1] (enrich): is on a cycle: enrich -> to-celsius -> in-range -> enrich" in decided.message


def test_a_missing_module_is_stalled_naming_module_node_and_namespace() -> None:
    decided = plan(dataflow_body(), lookup(to_celsius=None), OperatorConfig())
    assert decided == Stalled(
        "ModuleNotFound",
        "WasmModule to-celsius (used by node to-celsius) does not exist in namespace plant: "
        "create it, or fix the node's module",
    )


def test_a_module_of_another_operator_kind_is_stalled_naming_the_node() -> None:
    wrong = module_body("in-range")
    wrong["spec"]["operator"] = "map"
    decided = plan(dataflow_body(), lookup(in_range=wrong), OperatorConfig())
    assert isinstance(decided, Stalled)
    assert decided.reason == "ModuleKindMismatch"
    assert "spec.nodes[3] (in-range): is a filter node, but WasmModule in-range is a map operator" in decided.message


def test_a_module_not_ready_yet_makes_the_dataflow_wait_saying_why() -> None:
    pulling = module_body("overheat", ready="False", reason="PullFailed")
    decided = plan(dataflow_body(), lookup(overheat=pulling), OperatorConfig())
    assert decided == Waiting("ModuleNotReady", "WasmModule overheat is not Ready: PullFailed: m")


def test_a_stalled_module_stalls_the_dataflow() -> None:
    broken = module_body("overheat", ready="False", reason="DigestMismatch")
    broken["status"]["conditions"].append(
        {"type": "Stalled", "status": "True", "reason": "DigestMismatch", "message": "m", "lastTransitionTime": "x"}
    )
    decided = plan(dataflow_body(), lookup(overheat=broken), OperatorConfig())
    assert decided == Stalled("ModuleFailed", "WasmModule overheat is Stalled: DigestMismatch: m: fix the WasmModule")


def test_a_stalled_edit_keeps_reporting_the_config_that_still_runs() -> None:
    running = {"configHash": "sha256:old", "modules": [{"name": "enrich", "digest": DIGEST}], "conditions": []}
    status = status_for_plan(running, Stalled("InvalidGraph", "spec.edges[0]: bad"), 4)
    assert (status["configHash"], status["observedGeneration"]) == ("sha256:old", 4)
    by_type = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert by_type == {"Ready": ("False", "InvalidGraph"), "Stalled": ("True", "InvalidGraph")}


def deployment(config_hash: str, **status: int) -> dict[str, Any]:
    return {
        "metadata": {"generation": 2},
        "spec": {"replicas": 2, "template": {"metadata": {"annotations": {CONFIG_HASH: config_hash}}}},
        "status": status,
    }


def test_a_deployment_not_yet_observed_has_no_ready_workers() -> None:
    assert worker_counts(deployment("h"), 2) == WorkerCounts(2, 0, False)


def test_mid_rollout_only_updated_pods_count_as_ready() -> None:
    rolling = deployment("h", observedGeneration=2, replicas=3, updatedReplicas=1, readyReplicas=3)
    assert worker_counts(rolling, 2) == WorkerCounts(2, 1, False)


def test_a_finished_rollout_counts_every_ready_pod() -> None:
    done = deployment("h", observedGeneration=2, replicas=2, updatedReplicas=2, readyReplicas=2)
    assert worker_counts(done, 2) == WorkerCounts(2, 2, True)


def applied_status() -> dict[str, Any]:
    decided = plan(dataflow_body(), lookup(), OperatorConfig())
    assert isinstance(decided, Apply)
    return status_for_apply({}, decided, WorkerCounts(2, 0, False), 3)


def test_the_workers_becoming_ready_make_the_dataflow_ready() -> None:
    status = applied_status()
    done = deployment(status["configHash"], observedGeneration=2, replicas=2, updatedReplicas=2, readyReplicas=2)
    updated = status_for_workers(status, done)
    assert updated is not None
    assert updated["workers"] == {"desired": 2, "ready": 2}
    assert [(c["type"], c["status"], c["reason"]) for c in updated["conditions"]] == [("Ready", "True", "Succeeded")]


def test_the_status_names_the_worker_pods_selector_for_the_scale_subresource() -> None:
    assert applied_status()["selector"] == f"wasmflow.io/dataflow={dataflow_body()['metadata']['name']}"


def test_a_deployment_of_an_older_config_changes_nothing() -> None:
    old = deployment("sha256:older", observedGeneration=2, replicas=2, updatedReplicas=2, readyReplicas=2)
    assert status_for_workers(applied_status(), old) is None


def test_worker_counts_move_but_a_stalled_condition_stays() -> None:
    status = status_for_plan(applied_status(), Stalled("InvalidGraph", "bad"), 3)
    done = deployment(status["configHash"], observedGeneration=2, replicas=2, updatedReplicas=2, readyReplicas=2)
    updated = status_for_workers(status, done)
    assert updated is not None
    assert updated["workers"] == {"desired": 2, "ready": 2}
    assert updated["conditions"] == status["conditions"]


GRAPH = (Path(__file__).resolve().parents[2] / "integration" / "run" / "aio" / "graph.yaml").read_text()


def graph_body() -> dict[str, Any]:
    return {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "Dataflow",
        "metadata": {"name": "temps", "namespace": "plant", "generation": 1, "uid": "u1"},
        "spec": {
            "endpoints": {"broker": {"mqtt": {"url": "mqtt://broker:1883"}}},
            "graph": {
                "definition": GRAPH,
                "registry": "registry.local/aio",
                "sources": {"source": {"endpoint": "broker", "topic": "in"}},
                "sinks": {"sink": {"endpoint": "broker", "topic": "out"}},
            },
        },
    }


def test_a_resolved_graph_is_applied_with_its_module_digests_for_the_status() -> None:
    module = PinnedGraphModule(reference="registry.local/aio/wasmflow-tests/f2c:1.0.0", digest=DIGEST)
    planned = plan(
        graph_body(), lookup(), OperatorConfig(), graph=PinnedGraph(modules={"wasmflow-tests/f2c:1.0.0": module})
    )
    assert isinstance(planned, Apply)
    assert planned.digests == {"wasmflow-tests/f2c:1.0.0": DIGEST}


def test_a_graph_whose_modules_cannot_be_resolved_is_not_applied_and_says_why() -> None:
    why = Waiting("Unreachable", "module 'wasmflow-tests/f2c:1.0.0' of operation module-f2c/map: connection refused")
    assert plan(graph_body(), lookup(), OperatorConfig(), graph=why) == why
