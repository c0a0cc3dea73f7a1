"""Generate the CustomResourceDefinitions from the pydantic models: the models are the single source of truth.

pydantic's JSON schema is close to, but not, a Kubernetes structural schema (STYLE.md 2.6), so it is rewritten:
``$ref`` inlined, ``Optional[X]`` turned into a non-required X (``anyOf: [X, null]`` is not structural),
``additionalProperties: false`` and ``title`` dropped, ``const`` written as a one-value enum. CEL rules come from the
models' ``x-kubernetes-validations`` (mirrored there by validators), so both sides stay in step.

    python -m wasmflow.api.crd --out crds/        what `make manifests` runs
    python -m wasmflow.api.crd --check crds/      exit 1 when the files drifted from the models
"""

from __future__ import annotations

import argparse
import ast
import copy
import functools
import inspect
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from wasmflow.api.dataflow import Dataflow, DataflowSpec, DataflowStatus
from wasmflow.api.meta import API_GROUP
from wasmflow.api.wasmmodule import WasmModule, WasmModuleSpec, WasmModuleStatus

VERSION = "v1alpha1"
CATEGORY = "wasmflow"
READY = '.status.conditions[?(@.type=="Ready")]'
HEADER = "# Generated from controller/wasmflow/api by `make manifests`: do not edit by hand.\n"


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
        if len(options) != 1:
            raise ValueError(f"a union is not structural; use one type: {node}")
        rest = {k: v for k, v in node.items() if k != "anyOf" and not (k == "default" and v is None)}
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


@functools.cache
def _attribute_docstrings(module_file: str) -> dict[str, dict[str, str]]:
    """Class name -> field name -> the string literal right under the field's annotation, for every class of a
    source file (what pydantic's ``use_attribute_docstrings`` reads, one parse per file)."""
    tree = ast.parse(Path(module_file).read_text(encoding="utf-8"))
    found: dict[str, dict[str, str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        docs: dict[str, str] = {}
        for previous, statement in zip(node.body, node.body[1:], strict=False):
            if (
                isinstance(previous, ast.AnnAssign)
                and isinstance(previous.target, ast.Name)
                and isinstance(statement, ast.Expr)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
            ):
                docs[previous.target.id] = inspect.cleandoc(statement.value.value)
        found[node.name] = docs
    return found


def field_docstring(model: type[BaseModel], field: str) -> str | None:
    """The attribute docstring of ``field``, from the class of ``model``'s MRO that declares it."""
    for cls in model.__mro__:
        if field in getattr(cls, "__annotations__", {}):
            source = inspect.getsourcefile(cls)
            return _attribute_docstrings(source).get(cls.__name__, {}).get(field) if source else None
    return None


class _DocumentedSchema(GenerateJsonSchema):
    """pydantic's JSON schema, with each field's attribute docstring as its description, so ``kubectl explain``
    shows it. The models leave ``use_attribute_docstrings`` off: reading docstrings while the classes are built
    costs every process that imports them (a worker start) ~40 ms, and only the CRDs use them."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        model = schema["cls"]
        properties = json_schema.get("properties", {})
        for name, field in model.model_fields.items():
            key = field.alias or name
            if key in properties and "description" not in properties[key] and field.description is None:
                doc = field_docstring(model, name)
                if doc:
                    properties[key]["description"] = doc
        return json_schema


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of ``model`` (as accepted in a CRD)."""
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_DocumentedSchema)
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _structural(raw, defs)
    return schema


def _root_rules(model: type[BaseModel]) -> list[dict[str, Any]]:
    """CEL rules of the resource itself (they may read ``self.metadata.name``, nothing else of metadata)."""
    extra = model.model_config.get("json_schema_extra")
    rules = extra.get("x-kubernetes-validations") if isinstance(extra, dict) else None
    return [dict(rule) for rule in rules if isinstance(rule, dict)] if isinstance(rules, list) else []


def _crd(
    model: type[BaseModel],
    plural: str,
    short: str,
    spec_model: type[BaseModel],
    status_model: type[BaseModel],
    columns: list[dict[str, Any]],
    scale: dict[str, str] | None = None,
) -> dict[str, Any]:
    kind = model.__name__
    root: dict[str, Any] = {
        "type": "object",
        "description": " ".join((model.__doc__ or "").split()),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": schema_of(spec_model),
            "status": schema_of(status_model),
        },
    }
    if rules := _root_rules(model):
        root["x-kubernetes-validations"] = rules
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
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, **({"scale": scale} if scale else {})},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD object, for both resources."""
    ready = {"name": "Ready", "type": "string", "jsonPath": f"{READY}.status"}
    # The Ready message in the default view, as Flux shows it: `kubectl get dataflows` says what is wrong, and where.
    status = {"name": "Status", "type": "string", "jsonPath": f"{READY}.message"}
    age = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    return {
        f"{API_GROUP}_wasmmodules.yaml": _crd(
            WasmModule,
            "wasmmodules",
            "wm",
            WasmModuleSpec,
            WasmModuleStatus,
            [
                ready,
                {"name": "Operator", "type": "string", "jsonPath": ".spec.operator"},
                {"name": "Digest", "type": "string", "jsonPath": ".status.artifact.digest"},
                {"name": "Signer", "type": "string", "jsonPath": ".status.signature.signer"},
                age,
                status,
                {"name": "Reference", "type": "string", "jsonPath": ".spec.source.oci.reference", "priority": 1},
            ],
        ),
        f"{API_GROUP}_dataflows.yaml": _crd(
            Dataflow,
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
                {"name": "Config", "type": "string", "jsonPath": ".status.configHash", "priority": 1},
            ],
            # `kubectl scale dataflow`, and a HorizontalPodAutoscaler or KEDA ScaledObject targeting the Dataflow.
            scale={
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.workers.ready",
                "labelSelectorPath": ".status.selector",
            },
        ),
    }


def render_yaml(crd: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(crd, sort_keys=False, width=120)


def write(out: Path) -> list[Path]:
    """Write one file per CRD into ``out`` (created if needed); return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, crd in crds().items():
        path = out / name
        path.write_text(render_yaml(crd), encoding="utf-8")
        written.append(path)
    return written


def drifted(folder: Path) -> list[Path]:
    """The CRD files in ``folder`` that are missing or differ from what the models generate."""
    stale = []
    for name, crd in crds().items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render_yaml(crd):
            stale.append(path)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write (or check) the wasmflow CRDs generated from the models.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="write the CRDs into this folder")
    group.add_argument("--check", type=Path, nargs="+", help="exit 1 if the CRDs in these folders drifted")
    args = parser.parse_args(argv)
    if args.out is not None:
        for path in write(args.out):
            print(path)
        return 0
    stale = [path for folder in args.check for path in drifted(folder)]
    for path in stale:
        print(f"{path}: drifted from the models; run `make manifests`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
