"""The CRDs are generated from the models and checked in: they must not drift, and must be structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from wasmflow.api.crd import crds, drifted, main, render_yaml
from wasmflow.cli.main import cli

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = ("$ref", "anyOf", "oneOf", "allOf", "not", "title", "definitions", "$defs", "uniqueItems", "readOnly")


def by_kind() -> dict[str, dict[str, Any]]:
    return {c["spec"]["names"]["kind"]: c for c in crds().values()}


def root_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = by_kind()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("folder", ["crds", "charts/wasmflow/crds"])
def test_checked_in_crds_match_the_models(folder: str) -> None:
    assert drifted(ROOT / folder) == [], "the CRDs drifted from the models: run `make manifests`"


def _walk(node: Any, path: str = "") -> list[str]:
    found = []
    if isinstance(node, dict):
        found += [f"{path}.{key}" for key in FORBIDDEN if key in node]
        if node.get("additionalProperties") is False:
            found.append(f"{path}.additionalProperties=false")
        for key, value in node.items():
            if key not in ("x-kubernetes-validations", "default"):
                found += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _walk(value, f"{path}[{i}]")
    return found


def _untyped(schema: dict[str, Any], path: str = "") -> list[str]:
    found = [] if "type" in schema else [path or "."]
    for name, prop in schema.get("properties", {}).items():
        found += _untyped(prop, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += _untyped(schema[key], f"{path}.{key}")
    return found


@pytest.mark.parametrize("kind", ["WasmModule", "Dataflow"])
def test_schemas_use_no_keyword_a_structural_schema_forbids(kind: str) -> None:
    assert _walk(root_schema(kind)) == []


@pytest.mark.parametrize("kind", ["WasmModule", "Dataflow"])
def test_every_schema_node_has_a_type(kind: str) -> None:
    assert _untyped(root_schema(kind)) == []


@pytest.mark.parametrize("kind", ["WasmModule", "Dataflow"])
def test_unknown_fields_are_preserved_nowhere(kind: str) -> None:
    assert "x-kubernetes-preserve-unknown-fields" not in yaml.safe_dump(root_schema(kind))


@pytest.mark.parametrize("kind", ["WasmModule", "Dataflow"])
def test_conditions_are_a_list_map_keyed_by_type(kind: str) -> None:
    conditions = root_schema(kind)["properties"]["status"]["properties"]["conditions"]
    assert (conditions["x-kubernetes-list-type"], conditions["x-kubernetes-list-map-keys"]) == ("map", ["type"])
    assert conditions["items"]["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


def test_nodes_are_a_list_map_keyed_by_name() -> None:
    nodes = root_schema("Dataflow")["properties"]["spec"]["properties"]["nodes"]
    assert (nodes["x-kubernetes-list-type"], nodes["x-kubernetes-list-map-keys"]) == ("map", ["name"])


def test_field_docstrings_become_descriptions() -> None:
    spec = root_schema("WasmModule")["properties"]["spec"]["properties"]
    assert spec["strict"]["description"].startswith("Refuse components whose imports exceed their grants")


def test_optional_objects_default_to_their_filled_in_defaults() -> None:
    spec = root_schema("WasmModule")["properties"]["spec"]["properties"]
    assert spec["limits"]["default"] == {"memory": "64Mi", "timeoutPerMessage": "100ms"}
    assert "required" not in spec["limits"]


def test_cross_field_rules_are_cel_with_messages() -> None:
    spec = root_schema("Dataflow")["properties"]["spec"]
    messages = [rule["message"] for rule in spec["x-kubernetes-validations"]]
    assert "every edge must name existing nodes: an edge names a node that does not exist" in messages
    assert all(rule["message"] for rule in spec["x-kubernetes-validations"])


def test_printer_columns_short_names_and_category() -> None:
    kinds = by_kind()
    assert kinds["Dataflow"]["spec"]["names"]["shortNames"] == ["df"]
    assert kinds["WasmModule"]["spec"]["names"]["shortNames"] == ["wm"]
    assert {c["spec"]["names"]["categories"][0] for c in kinds.values()} == {"wasmflow"}
    version = kinds["Dataflow"]["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]][:3] == ["Ready", "Workers", "Desired"]
    assert version["subresources"]["status"] == {}
    assert "Digest" in [c["name"] for c in kinds["WasmModule"]["spec"]["versions"][0]["additionalPrinterColumns"]]


def test_a_dataflow_has_a_scale_subresource_on_its_replicas_ready_workers_and_selector() -> None:
    (version,) = by_kind()["Dataflow"]["spec"]["versions"]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.workers.ready",
        "labelSelectorPath": ".status.selector",
    }
    (module_version,) = by_kind()["WasmModule"]["spec"]["versions"]
    assert module_version["subresources"] == {"status": {}}


def test_the_generator_writes_and_then_finds_no_drift(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(crds())
    assert main(["--check", str(tmp_path)]) == 0


def test_the_drift_check_names_the_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--out", str(tmp_path)])
    stale = tmp_path / "wasmflow.io_dataflows.yaml"
    stale.write_text(stale.read_text().replace("df", "dfx"))
    assert main(["--check", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"{stale}: drifted from the models; run `make manifests`\n"


def test_wasmflow_crds_prints_both_crds_for_kubectl() -> None:
    result = CliRunner().invoke(cli, ["crds"])
    assert result.exit_code == 0
    documents = list(yaml.safe_load_all(result.output))
    assert [d["metadata"]["name"] for d in documents] == ["wasmmodules.wasmflow.io", "dataflows.wasmflow.io"]


def test_wasmflow_crds_out_writes_the_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["crds", "--out", str(tmp_path / "crds")])
    assert result.exit_code == 0
    for name, crd in crds().items():
        assert (tmp_path / "crds" / name).read_text() == render_yaml(crd)
