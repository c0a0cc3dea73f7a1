"""Manifests the models and the API server must judge alike: one table for both sides.

Each invalid case is a small change to an example manifest. The unit tests check that the models refuse it naming
``where`` and saying ``says``; the integration tests check that the API server (schema and CEL rules of the
generated CRDs) refuses it saying ``server_says`` (``says`` unless the wording differs, e.g. schema errors).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "manifests"
Doc = dict[str, Any]


@cache
def _examples(name: str) -> tuple[Doc, ...]:
    return tuple(d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d)


def example_dataflow() -> Doc:
    """The plant dataflow: sensors -> enrich -> to-celsius -> in-range -> overheat -(true)-> alerts
    -(false)-> window-average -> averages."""
    return copy.deepcopy(_examples("dataflow.yaml")[0])


def example_module() -> Doc:
    """The ``enrich`` WasmModule (an OCI map operator)."""
    return copy.deepcopy(_examples("wasmmodules.yaml")[0])


def example_modules() -> list[Doc]:
    return [copy.deepcopy(d) for d in _examples("wasmmodules.yaml")]


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    change: Callable[[Doc], object]
    where: str
    says: str
    server_says: str | None = None

    def manifest(self) -> Doc:
        doc = example_dataflow() if self.kind == "Dataflow" else example_module()
        self.change(doc)
        return doc

    @property
    def server_message(self) -> str:
        return self.server_says or self.says


def _spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]
    return spec


def _node(doc: Doc, i: int) -> Doc:
    node: Doc = doc["spec"]["nodes"][i]
    return node


def _drop_false_arm(doc: Doc) -> None:
    _spec(doc)["edges"] = [e for e in _spec(doc)["edges"] if e.get("arm") is not False]


INVALID_DATAFLOWS = [
    Case(
        "edge-to-a-missing-node",
        "Dataflow",
        lambda d: _spec(d)["edges"].append({"from": "averages", "to": "ghost"}),
        "spec.edges[7]",
        "edge averages -> ghost names a node that does not exist",
    ),
    Case(
        "sink-naming-an-undeclared-endpoint",
        "Dataflow",
        lambda d: _node(d, 6).update(endpoint="elsewhere"),
        "spec.nodes[6].endpoint",
        "node alerts names endpoint elsewhere, not declared in spec.endpoints",
    ),
    Case(
        "branch-with-one-arm",
        "Dataflow",
        _drop_false_arm,
        "spec.nodes[4]",
        "branch node overheat needs an edge with arm: true and one with arm: false, or dropArm",
    ),
    Case(
        "branch-dropping-a-wired-arm",
        "Dataflow",
        lambda d: _node(d, 4).update(dropArm=False),
        "spec.nodes[4]",
        "branch node overheat needs an edge with arm: true and one with arm: false, or dropArm",
    ),
    Case(
        "arm-on-an-edge-from-a-map",
        "Dataflow",
        lambda d: _spec(d)["edges"][0].update(arm=True),
        "spec.edges[0]",
        "edge sensors -> enrich: arm must be set on the edges that leave a branch node, and only on them",
    ),
    Case(
        "edge-from-a-branch-without-arm",
        "Dataflow",
        lambda d: _spec(d)["edges"][4].pop("arm"),
        "spec.edges[4]",
        "edge overheat -> alerts: arm must be set on the edges that leave a branch node, and only on them",
    ),
    Case(
        "dead-letter-without-target",
        "Dataflow",
        lambda d: _spec(d).update(errorPolicy={"action": "deadLetter"}),
        "spec.errorPolicy",
        "deadLetter needs endpoint and topic",
    ),
    Case(
        "dead-letter-to-an-undeclared-endpoint",
        "Dataflow",
        lambda d: _node(d, 2).update(errorPolicy={"action": "deadLetter", "endpoint": "nowhere", "topic": "dead"}),
        "spec.nodes[2].errorPolicy.endpoint",
        "an errorPolicy names an endpoint not declared in spec.endpoints",
    ),
    Case(
        "operator-without-module",
        "Dataflow",
        lambda d: _node(d, 1).pop("module"),
        "spec.nodes[1]",
        "operators need module (a WasmModule name), and take no endpoint or topic",
    ),
    Case(
        "operator-with-a-topic",
        "Dataflow",
        lambda d: _node(d, 1).update(topic="x"),
        "spec.nodes[1]",
        "operators need module (a WasmModule name), and take no endpoint or topic",
    ),
    Case(
        "sink-with-a-module",
        "Dataflow",
        lambda d: _node(d, 7).update(module="enrich"),
        "spec.nodes[7]",
        "sources and sinks need endpoint and topic, and take no module",
    ),
    Case(
        "source-without-topic",
        "Dataflow",
        lambda d: _node(d, 0).pop("topic"),
        "spec.nodes[0]",
        "sources and sinks need endpoint and topic, and take no module",
    ),
    Case(
        "accumulate-without-window",
        "Dataflow",
        lambda d: _node(d, 5).pop("window"),
        "spec.nodes[5]",
        "accumulate nodes need a window, and only they take one",
    ),
    Case(
        "window-on-a-map",
        "Dataflow",
        lambda d: _node(d, 1).update(window={"count": 3}),
        "spec.nodes[1]",
        "accumulate nodes need a window, and only they take one",
    ),
    Case(
        "window-without-bound",
        "Dataflow",
        lambda d: _node(d, 5).update(window={}),
        "spec.nodes[5].window",
        "a window needs count and/or duration",
    ),
    Case(
        "window-of-zero-seconds",
        "Dataflow",
        lambda d: _node(d, 5).update(window={"duration": "0s"}),
        "spec.nodes[5].window.duration",
        "a window duration must be more than 0",
    ),
    Case(
        "error-policy-on-a-sink",
        "Dataflow",
        lambda d: _node(d, 6).update(errorPolicy={"action": "drop"}),
        "spec.nodes[6].errorPolicy",
        "errorPolicy applies to operators only",
    ),
    Case(
        "drop-arm-on-a-map",
        "Dataflow",
        lambda d: _node(d, 1).update(dropArm=True),
        "spec.nodes[1].dropArm",
        "dropArm applies to branch nodes only",
    ),
    Case(
        "sink-topic-with-a-wildcard",
        "Dataflow",
        lambda d: _node(d, 7).update(topic="plant/+/averages"),
        "spec.nodes[7].topic",
        "a sink topic cannot contain the wildcards + or #",
    ),
    Case(
        "tls-on-a-plain-mqtt-url",
        "Dataflow",
        lambda d: _spec(d)["endpoints"]["plant"]["mqtt"].update(tls={"caSecretRef": {"name": "ca", "key": "ca.crt"}}),
        "spec.endpoints.plant.mqtt.tls",
        "tls is set but the url is not mqtts://",
    ),
    Case(
        "name-too-long-for-its-workers",
        "Dataflow",
        lambda d: d["metadata"].update(name="p" * 57),
        "metadata.name",
        "a Dataflow name must be a DNS-1035 label of at most 56 characters",
    ),
    Case(
        "name-starting-with-a-digit",
        "Dataflow",
        lambda d: d["metadata"].update(name="1plant"),
        "metadata.name",
        "a Dataflow name must be a DNS-1035 label",
    ),
    Case(
        "two-nodes-with-one-name",
        "Dataflow",
        lambda d: _node(d, 2).update(name="enrich"),
        "spec.nodes",
        "node names must be unique: enrich",
        server_says='Duplicate value: {"name":"enrich"}',
    ),
    Case(
        "negative-replicas",
        "Dataflow",
        lambda d: _spec(d).update(replicas=-1),
        "spec.replicas",
        "greater than or equal to 0",
    ),
    Case(
        "qos-2",
        "Dataflow",
        lambda d: _spec(d)["endpoints"]["plant"]["mqtt"].update(qos=2),
        "spec.endpoints.plant.mqtt.qos",
        "Input should be 0 or 1",
        server_says='Unsupported value: 2: supported values: "0", "1"',
    ),
    Case(
        "message-size-beyond-16mi",
        "Dataflow",
        lambda d: _spec(d).update(limits={"maxMessageSize": "32Mi"}),
        "spec.limits.maxMessageSize",
        "maxMessageSize must be at least 1Ki and at most 16Mi",
    ),
    Case(
        "message-size-under-1ki",
        "Dataflow",
        lambda d: _spec(d).update(limits={"maxMessageSize": "100"}),
        "spec.limits.maxMessageSize",
        "maxMessageSize must be at least 1Ki and at most 16Mi",
    ),
    Case(
        "message-size-not-a-quantity",
        "Dataflow",
        lambda d: _spec(d).update(limits={"maxMessageSize": "lots"}),
        "spec.limits.maxMessageSize",
        "String should match pattern",
        server_says="spec.limits.maxMessageSize: Invalid value",
    ),
]

INVALID_MODULES = [
    Case(
        "two-sources",
        "WasmModule",
        lambda d: _spec(d)["source"].update(configMapRef={"name": "enrich"}),
        "spec.source",
        "set exactly one of oci and configMapRef",
    ),
    Case(
        "no-source",
        "WasmModule",
        lambda d: _spec(d).update(source={}),
        "spec.source",
        "set exactly one of oci and configMapRef",
    ),
    Case(
        "zero-memory",
        "WasmModule",
        lambda d: _spec(d)["limits"].update(memory="0Mi"),
        "spec.limits.memory",
        "memory must be more than 0 and at most 4Gi",
    ),
    Case(
        "memory-beyond-wasm32",
        "WasmModule",
        lambda d: _spec(d)["limits"].update(memory="5Gi"),
        "spec.limits.memory",
        "memory must be more than 0 and at most 4Gi",
    ),
    Case(
        "zero-timeout",
        "WasmModule",
        lambda d: _spec(d)["limits"].update(timeoutPerMessage="0ms"),
        "spec.limits.timeoutPerMessage",
        "timeoutPerMessage must be more than 0",
    ),
    Case(
        "timeout-beyond-the-loop-budget",
        "WasmModule",
        lambda d: _spec(d)["limits"].update(timeoutPerMessage="10m"),
        "spec.limits.timeoutPerMessage",
        "timeoutPerMessage must be at most 30s (a call blocks the worker's loop)",
    ),
    Case(
        "capability-twice",
        "WasmModule",
        lambda d: _spec(d).update(capabilities=["http", "http"]),
        "spec.capabilities",
        "capabilities are listed more than once: http",
        server_says='Duplicate value: "http"',
    ),
    Case(
        "name-with-a-dot",
        "WasmModule",
        lambda d: d["metadata"].update(name="enrich.v2"),
        "metadata.name",
        "a WasmModule name must be a DNS label",
    ),
    Case(
        "digest-not-sha256",
        "WasmModule",
        lambda d: _spec(d)["source"]["oci"].update(digest="md5:abc"),
        "spec.source.oci.digest",
        "should match pattern '^sha256:[a-f0-9]{64}$'",
        server_says="should match '^sha256:[a-f0-9]{64}$'",
    ),
    Case(
        "unknown-operator-kind",
        "WasmModule",
        lambda d: _spec(d).update(operator="reduce"),
        "spec.operator",
        "Input should be 'map', 'filter', 'branch' or 'accumulate'",
        server_says='Unsupported value: "reduce"',
    ),
]

INVALID = INVALID_DATAFLOWS + INVALID_MODULES


def _drop_false_arm_on_purpose(doc: Doc) -> None:
    """Only alerts: the branch drops what is not overheated, and the averaging half of the graph goes."""
    _node(doc, 4)["dropArm"] = False
    spec = _spec(doc)
    spec["nodes"] = [n for n in spec["nodes"] if n["name"] not in ("window-average", "averages")]
    spec["edges"] = [e for e in spec["edges"] if e.get("arm") is not False and e["from"] != "window-average"]


def _dead_letter_over_tls(doc: Doc) -> None:
    _spec(doc)["endpoints"]["secure"] = {
        "mqtt": {
            "url": "mqtts://broker.plant:8883",
            "tls": {"caSecretRef": {"name": "plant-ca", "key": "ca.crt"}, "clientCertSecretRef": {"name": "client"}},
            "credentialsSecretRef": {"name": "mqtt-creds"},
        }
    }
    _spec(doc)["errorPolicy"] = {"action": "deadLetter", "endpoint": "secure", "topic": "plant/dead"}
    _node(doc, 3)["errorPolicy"] = {"action": "drop"}


VALID: list[tuple[str, str, Callable[[Doc], object]]] = [
    ("the-example-dataflow", "Dataflow", lambda d: None),
    ("a-branch-dropping-its-false-arm", "Dataflow", _drop_false_arm_on_purpose),
    ("dead-letter-over-tls", "Dataflow", _dead_letter_over_tls),
    ("the-example-module", "WasmModule", lambda d: None),
    (
        "a-module-from-a-configmap",
        "WasmModule",
        lambda d: _spec(d).update(source={"configMapRef": {"name": "enrich-wasm"}}, capabilities=["http", "stdio"]),
    ),
    ("a-module-with-4gi-and-fuel", "WasmModule", lambda d: _spec(d).update(limits={"memory": "4Gi", "fuel": 100000})),
    ("a-dataflow-taking-16mi-messages", "Dataflow", lambda d: _spec(d).update(limits={"maxMessageSize": "16Mi"})),
]


def valid_manifest(kind: str, change: Callable[[Doc], object]) -> Doc:
    doc = example_dataflow() if kind == "Dataflow" else example_module()
    change(doc)
    return doc
