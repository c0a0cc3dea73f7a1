"""The resource models accept real manifests and refuse bad ones naming the file, the document and the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.unit.api.cases import EXAMPLES, INVALID, VALID, Case, Doc, example_dataflow, valid_manifest
from wasmflow.api.dataflow import Dataflow, ErrorAction
from wasmflow.api.frontends.dataflow import dataflow_graph
from wasmflow.api.manifests import load_manifests, parse_manifests
from wasmflow.api.wasmmodule import WasmModule
from wasmflow.errors import ConfigError


def test_the_example_manifests_load() -> None:
    manifests = load_manifests(EXAMPLES / "wasmmodules.yaml") + load_manifests(EXAMPLES / "dataflow.yaml")
    assert sum(isinstance(m, WasmModule) for m in manifests) == 5
    (dataflow,) = [m for m in manifests if isinstance(m, Dataflow)]
    window = dataflow.spec.nodes[5].window
    assert window is not None
    assert (window.count, window.duration_seconds) == (10, 30)


@pytest.mark.parametrize(("name", "kind", "change"), VALID, ids=[v[0] for v in VALID])
def test_valid_manifests_parse_and_their_graph_validates(name: str, kind: str, change: Callable[[Doc], object]) -> None:
    (manifest,) = parse_manifests(yaml.safe_dump(valid_manifest(kind, change)))
    if isinstance(manifest, Dataflow):
        assert dataflow_graph(manifest.spec).sources == ("sensors",)


@pytest.mark.parametrize("case", INVALID, ids=[c.id for c in INVALID])
def test_invalid_manifests_are_refused_naming_the_field(case: Case) -> None:
    with pytest.raises(ConfigError) as info:
        parse_manifests(yaml.safe_dump(case.manifest()), "plant.yaml")
    assert info.value.where == f"plant.yaml#1 {case.where}"
    assert case.says in info.value.message


def test_module_defaults_match_the_documentation() -> None:
    module = WasmModule.model_validate(
        {
            "kind": "WasmModule",
            "metadata": {"name": "m"},
            "spec": {"source": {"oci": {"reference": "r:5000/a/b:1"}}, "operator": "map"},
        }
    )
    assert module.spec.limits.memory_bytes == 64 * 2**20
    assert module.spec.limits.timeout_seconds == pytest.approx(0.1)
    assert module.spec.limits.fuel is None
    assert module.spec.interval == "10m"
    assert module.spec.strict is False
    assert module.spec.capabilities == []
    assert module.spec.source.oci is not None
    assert module.spec.source.oci.insecure is False


def test_dataflow_defaults_match_the_documentation() -> None:
    doc = example_dataflow()
    del doc["spec"]["errorPolicy"]
    del doc["spec"]["endpoints"]["plant"]["mqtt"]["qos"]
    dataflow = Dataflow.model_validate(doc)
    assert dataflow.spec.error_policy.action is ErrorAction.DROP
    assert dataflow.spec.replicas == 1
    assert dataflow.spec.endpoints["plant"].mqtt.qos == 1
    assert dataflow.spec.nodes[4].drop_arm is None
    assert dataflow.spec.limits.max_message_size == "1Mi"
    assert dataflow.spec.limits.max_message_bytes == 2**20


def test_a_model_dumps_to_the_manifest_it_was_read_from() -> None:
    doc = example_dataflow()
    dumped = Dataflow.model_validate(doc).model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)
    assert dumped["spec"]["edges"] == doc["spec"]["edges"]
    assert dumped["spec"]["nodes"] == doc["spec"]["nodes"]


def test_an_unknown_field_is_refused_with_its_path() -> None:
    doc = example_dataflow()
    doc["spec"]["nodes"][1]["modul"] = "typo"
    with pytest.raises(ConfigError) as info:
        parse_manifests(yaml.safe_dump(doc), "plant.yaml")
    assert info.value.where == "plant.yaml#1 spec.nodes[1].modul"
    assert info.value.message.startswith("Extra inputs are not permitted")


def test_errors_name_the_document_within_the_file(tmp_path: Path) -> None:
    bad = example_dataflow()
    bad["spec"]["replicas"] = "many"
    path = tmp_path / "all.yaml"
    path.write_text((EXAMPLES / "wasmmodules.yaml").read_text() + "---\n" + yaml.safe_dump(bad))
    with pytest.raises(ConfigError) as info:
        load_manifests(path)
    assert info.value.where == f"{path}#6 spec.replicas"


def test_further_problems_are_counted() -> None:
    doc = example_dataflow()
    doc["spec"]["replicas"] = "many"
    doc["spec"]["nodes"][0]["topic"] = 5
    with pytest.raises(ConfigError, match=r"\(and 1 more\)"):
        parse_manifests(yaml.safe_dump(doc))


def test_an_unknown_kind_is_named(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text("kind: Pod\n")
    with pytest.raises(ConfigError) as info:
        load_manifests(path)
    assert (info.value.where, info.value.message) == (
        f"{path}#1",
        "kind must be one of WasmModule, Dataflow, got 'Pod'",
    )


def test_a_document_that_is_not_a_mapping_is_named() -> None:
    with pytest.raises(ConfigError, match="expected a mapping") as info:
        parse_manifests("- a\n- b\n", "list.yaml")
    assert info.value.where == "list.yaml#1"


def test_broken_yaml_names_the_file() -> None:
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        parse_manifests("a: [1,\n", "broken.yaml")
    assert info.value.where == "broken.yaml"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read") as info:
        load_manifests(tmp_path / "nope.yaml")
    assert info.value.where == str(tmp_path / "nope.yaml")


def test_empty_documents_are_skipped() -> None:
    text = "---\n" + yaml.safe_dump(example_dataflow()) + "---\n"
    assert [type(m) for m in parse_manifests(text)] == [Dataflow]
