"""The CRDs are generated from the models and checked in: they must not drift, and must be structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wasmflow.api.crd import crds, render_yaml

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("folder", ["crds", "charts/wasmflow/crds"])
def test_checked_in_crds_match_the_models(folder: str) -> None:
    for name, crd in crds().items():
        path = ROOT / folder / name
        assert path.exists(), f"{path} is missing: run `make manifests`"
        assert path.read_text() == render_yaml(crd), f"{path} drifted from the models: run `make manifests`"


def _walk(node: Any, path: str = "") -> list[str]:
    found = []
    if isinstance(node, dict):
        for key in ("$ref", "anyOf", "oneOf", "allOf", "title", "definitions", "$defs"):
            if key in node:
                found.append(f"{path}.{key}")
        if node.get("additionalProperties") is False:
            found.append(f"{path}.additionalProperties=false")
        for key, value in node.items():
            found += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _walk(value, f"{path}[{i}]")
    return found


def test_schemas_use_no_keyword_a_structural_schema_forbids() -> None:
    for crd in crds().values():
        assert _walk(crd["spec"]["versions"][0]["schema"]) == []


def test_conditions_are_a_list_map_keyed_by_type() -> None:
    for crd in crds().values():
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["properties"]["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


def test_printer_columns_short_names_and_category() -> None:
    by_kind = {c["spec"]["names"]["kind"]: c["spec"] for c in crds().values()}
    assert by_kind["Dataflow"]["names"]["shortNames"] == ["df"]
    assert by_kind["WasmModule"]["names"]["categories"] == ["wasmflow"]
    columns = [c["name"] for c in by_kind["Dataflow"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:3] == ["Ready", "Workers", "Desired"]
    assert "Digest" in [c["name"] for c in by_kind["WasmModule"]["versions"][0]["additionalPrinterColumns"]]
