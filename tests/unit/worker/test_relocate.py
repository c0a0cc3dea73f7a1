"""Running a pod's worker config outside the pod: every path it names is read under the chosen root."""

from __future__ import annotations

from pathlib import Path

from wasmflow.api.dataflow import DataflowSpec
from wasmflow.api.kinds import OperatorKind
from wasmflow.api.workerconfig import EndpointFiles, PinnedGraph, PinnedGraphModule, PinnedModule, WorkerConfig
from wasmflow.worker.main import relocate

SPEC = DataflowSpec.model_validate(
    {
        "endpoints": {"site": {"mqtt": {"url": "mqtt://broker:1883", "credentialsSecretRef": {"name": "creds"}}}},
        "nodes": [
            {"name": "in", "type": "source", "endpoint": "site", "topic": "in"},
            {"name": "m", "type": "map", "module": "m"},
            {"name": "out", "type": "sink", "endpoint": "site", "topic": "out"},
        ],
        "edges": [{"from": "in", "to": "m"}, {"from": "m", "to": "out"}],
    }
)


def test_cache_secrets_and_module_files_move_under_the_root() -> None:
    config = WorkerConfig(
        namespace="ns",
        dataflow="df",
        spec=SPEC,
        modules={
            "m": PinnedModule(
                reference="r.example/m:1",
                digest="sha256:" + "a" * 64,
                pull_secret_file="/var/run/secrets/wasmflow/registry/pull/.dockerconfigjson",
                operator=OperatorKind.MAP,
            )
        },
        endpoint_files={
            "site": EndpointFiles(username_file="/var/run/s/username", password_file="/var/run/s/password")
        },
    )
    moved = relocate(config, Path("/tmp/pod"))
    assert moved.cache_dir == "/tmp/pod/var/cache/wasmflow"
    assert moved.modules["m"].pull_secret_file == "/tmp/pod/var/run/secrets/wasmflow/registry/pull/.dockerconfigjson"
    assert moved.modules["m"].path is None
    assert moved.endpoint_files["site"] == EndpointFiles(
        username_file="/tmp/pod/var/run/s/username", password_file="/tmp/pod/var/run/s/password"
    )
    assert (moved.spec, moved.modules["m"].digest) == (config.spec, config.modules["m"].digest)


def test_the_registry_ca_named_by_modules_and_the_graph_moves_under_the_root() -> None:
    ca = "/etc/wasmflow/registry-ca.crt"
    module = PinnedModule(reference="r.example/m:1", digest="sha256:" + "a" * 64, ca_file=ca, operator=OperatorKind.MAP)
    graph = PinnedGraph(
        artifact="r.example/g@sha256:" + "b" * 64,
        ca_file=ca,
        modules={"f2c:1": PinnedGraphModule(reference="r.example/f2c:1", digest="sha256:" + "c" * 64, ca_file=ca)},
    )
    config = WorkerConfig(namespace="ns", dataflow="df", spec=SPEC, modules={"m": module}, graph=graph)
    moved = relocate(config, Path("/tmp/pod"))
    assert moved.modules["m"].ca_file == "/tmp/pod/etc/wasmflow/registry-ca.crt"
    assert moved.graph is not None
    assert moved.graph.ca_file == "/tmp/pod/etc/wasmflow/registry-ca.crt"
    assert moved.graph.modules["f2c:1"].ca_file == "/tmp/pod/etc/wasmflow/registry-ca.crt"
    assert moved.graph.artifact == graph.artifact
