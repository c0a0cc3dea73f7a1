"""Generate the CustomResourceDefinitions from the pydantic models: the models are the single source of truth.

pydantic's JSON schema is close to, but not, a Kubernetes structural schema, so it is rewritten: ``$ref`` inlined,
``Optional[X]`` turned into a non-required X (``anyOf: [X, null]`` is not structural), ``additionalProperties:
false`` and ``title`` dropped, ``const`` written as a one-value enum. CEL rules come from the models'
``x-kubernetes-validations`` (mirrored there by validators), so both sides stay in step.

    python -m wasmflow.api.crd --out crds/      (what `make manifests` runs)
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import yaml

from wasmflow.api.dataflow import DataflowSpec, DataflowStatus
from wasmflow.api.meta import API_GROUP
from wasmflow.api.wasmmodule import WasmModuleSpec, WasmModuleStatus

READY = '.status.conditions[?(@.type=="Ready")]'


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].split("/")[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _structural({**target, **extra}, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o != {"type": "null"}]
        if len(options) == 1:
            rest = {
                k: v for k, v in node.items() if k not in ("anyOf", "default") or (k == "default" and v is not None)
            }
            return _structural({**options[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs") or (key == "additionalProperties" and value is False):
            continue
        if key == "default" and value is None:
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
            continue
        out[key] = _structural(value, defs)
    return out


def schema_of(model: Any) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _structural(raw, defs)
    return schema


def _conditions_list_map(status: dict[str, Any]) -> dict[str, Any]:
    conditions = status["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    conditions["maxItems"] = 16
    return status


def _crd(kind: str, plural: str, short: str, spec_model: Any, status_model: Any, columns: list[dict[str, Any]]) -> Any:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["wasmflow"],
            },
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (spec_model.__doc__ or "").strip().replace("Desired state of a", "A"),
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": schema_of(spec_model),
                                "status": _conditions_list_map(schema_of(status_model)),
                            },
                        }
                    },
                }
            ],
        },
    }


def crds() -> dict[str, Any]:
    """File name -> CRD object, for both resources."""
    ready = {"name": "Ready", "type": "string", "jsonPath": f"{READY}.status"}
    status = {"name": "Status", "type": "string", "jsonPath": f"{READY}.message", "priority": 1}
    age = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    return {
        f"{API_GROUP}_wasmmodules.yaml": _crd(
            "WasmModule",
            "wasmmodules",
            "wm",
            WasmModuleSpec,
            WasmModuleStatus,
            [
                ready,
                {"name": "Operator", "type": "string", "jsonPath": ".spec.operator"},
                {"name": "Digest", "type": "string", "jsonPath": ".status.artifact.digest"},
                age,
                status,
            ],
        ),
        f"{API_GROUP}_dataflows.yaml": _crd(
            "Dataflow",
            "dataflows",
            "df",
            DataflowSpec,
            DataflowStatus,
            [
                ready,
                {"name": "Workers", "type": "integer", "jsonPath": ".status.workers.ready"},
                {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
                age,
                status,
            ],
        ),
    }


def render_yaml(crd: Any) -> str:
    header = "# Generated from controller/wasmflow/api by `make manifests`: do not edit by hand.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=120)


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, crd in crds().items():
        path = out / name
        path.write_text(render_yaml(crd), encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the wasmflow CRDs generated from the models.")
    parser.add_argument("--out", type=Path, required=True)
    for path in write(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
