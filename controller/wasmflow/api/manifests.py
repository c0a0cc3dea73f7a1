"""Read WasmModule and Dataflow manifests from YAML, with errors that name the file, document and field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from wasmflow.api.dataflow import Dataflow
from wasmflow.api.wasmmodule import WasmModule
from wasmflow.errors import ConfigError

Manifest = WasmModule | Dataflow
KINDS: dict[str, type[WasmModule] | type[Dataflow]] = {"WasmModule": WasmModule, "Dataflow": Dataflow}


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


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
        first = exc.errors()[0]
        field = _location(tuple(first["loc"]))
        message = first["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{message}{more}", where=f"{where} {field}".strip()) from exc


def load_manifests(path: Path) -> list[Manifest]:
    """Every WasmModule and Dataflow in a YAML file (``---``-separated documents)."""
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", where=str(path)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", where=str(path)) from exc
    return [parse_manifest(doc, f"{path}#{i + 1}") for i, doc in enumerate(documents) if doc is not None]
