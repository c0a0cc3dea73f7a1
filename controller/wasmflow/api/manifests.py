"""Read WasmModule and Dataflow manifests from YAML, with errors that name the file, document and field."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from wasmflow.api.common import FieldError, format_path
from wasmflow.api.dataflow import Dataflow
from wasmflow.api.wasmmodule import WasmModule
from wasmflow.api.yaml_input import MAX_MANIFEST_BYTES, load_yaml_all, read_text
from wasmflow.errors import ConfigError

Manifest = WasmModule | Dataflow
KINDS: dict[str, type[WasmModule] | type[Dataflow]] = {"WasmModule": WasmModule, "Dataflow": Dataflow}


def describe_error(error: ErrorDetails) -> tuple[str, str]:
    """(field path, message) of one pydantic error, with a validator's FieldError placed at its own field."""
    path = list(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    problem = (error.get("ctx") or {}).get("error")
    if isinstance(problem, FieldError):
        path += problem.path
        message = problem.message
    return format_path(path), message


def validation_error(exc: ValidationError, where: str) -> ConfigError:
    """A ConfigError for the first problem of ``exc``, at ``<where> <field path>``, counting the others."""
    field, message = describe_error(exc.errors()[0])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return ConfigError(f"{message}{more}", where=f"{where} {field}".strip())


def parse_manifest(document: object, where: str) -> Manifest:
    """One YAML document as a model; ``where`` (``file.yaml#2``) prefixes every error location."""
    if not isinstance(document, dict):
        raise ConfigError("expected a mapping with apiVersion, kind, metadata and spec", where=where)
    kind = document.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}", where=where)
    try:
        return KINDS[kind].model_validate(document)
    except ValidationError as exc:
        raise validation_error(exc, where) from exc


def parse_manifests(text: str, name: str = "<string>") -> list[Manifest]:
    """Every WasmModule and Dataflow in YAML text (``---``-separated); ``name`` stands for the file in errors.

    Bounded like every YAML from outside (``yaml_input``): size, no anchors or aliases, nesting depth.
    """
    documents = load_yaml_all(text, name, max_bytes=MAX_MANIFEST_BYTES)
    return [parse_manifest(doc, f"{name}#{i + 1}") for i, doc in enumerate(documents) if doc is not None]


def load_manifests(path: Path) -> list[Manifest]:
    """Every WasmModule and Dataflow in a YAML file; errors name the file, the document (``#1`` first) and field."""
    return parse_manifests(read_text(path, max_bytes=MAX_MANIFEST_BYTES), str(path))
