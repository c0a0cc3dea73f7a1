"""YAML from outside (AIO graph definitions, manifests for ``wasmflow run``), parsed with bounds, in one place.

YAML's anchors and aliases let a few hundred bytes stand for gigabytes: ``a: &a [x, x, ...]``, ``b: &b [*a, *a,
...]`` nested eight deep is a 600-byte "billion laughs" whose ``str()`` is 3 GB. PyYAML's ``safe_load`` keeps the
aliases as shared objects, so the blow-up comes later, in whoever walks the value (a parameter default turned
into text, a JSON dump, a validator). Nothing we read needs them: AIO's graph schema and our manifests are plain
trees. So this loader refuses any anchor or alias, naming the field where it is (its path and line), refuses
nesting deeper than ``MAX_DEPTH`` (PyYAML's composer recurses per level), and refuses text over the caller's
byte limit before parsing anything. Time and memory are then linear in the input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import Node, ScalarNode

from wasmflow.errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_GRAPH_BYTES", "MAX_MANIFEST_BYTES", "load_yaml", "load_yaml_all", "read_text"]

#: An AIO graph definition: the bound of ``spec.graph.definition`` in the CRD, and of a pulled graph artifact.
MAX_GRAPH_BYTES = 256 * 1024
#: A file of manifests for ``wasmflow run`` (many documents, each far smaller than this).
MAX_MANIFEST_BYTES = 4 * 2**20
#: Deepest nesting of mappings and sequences accepted (AIO graphs and our manifests need fewer than ten).
MAX_DEPTH = 64


class _Refused(yaml.YAMLError):
    """Raised inside the loader; turned into a ConfigError naming the field by ``load_yaml``."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.message = message


class _TreeLoader(yaml.SafeLoader):
    """A SafeLoader that accepts trees only: no anchor, no alias, bounded depth; it tracks the field path."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str | int] = []

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        pushed = parent is not None and index is not None
        if pushed:
            self._path.append(index.value if isinstance(index, ScalarNode) else index)
        try:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
            if isinstance(event, AliasEvent):
                raise _Refused(self._where(), line, f"YAML aliases are not accepted (*{event.anchor}): write it out")
            if isinstance(event, ScalarEvent | CollectionStartEvent) and event.anchor is not None:
                raise _Refused(self._where(), line, f"YAML anchors are not accepted (&{event.anchor}): write it out")
            if len(self._path) >= MAX_DEPTH:
                raise _Refused(self._where(), line, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            if pushed:
                self._path.pop()

    def _where(self) -> str:
        text = ""
        for part in self._path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        return (text if len(text) <= 120 else text[:117] + "...") or "(document)"


def _check_size(text: str, where: str, max_bytes: int) -> None:
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise ConfigError(f"{size:,} bytes of YAML, over the limit of {max_bytes:,} bytes", where=where)


def _refusal(exc: _Refused, where: str) -> ConfigError:
    return ConfigError(f"{exc.path} (line {exc.line}): {exc.message}", where=where)


def load_yaml(text: str, where: str, *, max_bytes: int) -> Any:
    """The one YAML document in ``text``; ConfigError (at ``where``) for anything refused or malformed."""
    _check_size(text, where, max_bytes)
    loader = _TreeLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise _refusal(exc, where) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", where=where) from exc
    finally:
        loader.dispose()


def load_yaml_all(text: str, where: str, *, max_bytes: int) -> list[Any]:
    """Every document of a ``---``-separated stream, under the same rules as ``load_yaml``."""
    _check_size(text, where, max_bytes)
    loader = _TreeLoader(text)
    documents: list[Any] = []
    try:
        while loader.check_data():  # type: ignore[no-untyped-call]
            documents.append(loader.get_data())
    except _Refused as exc:
        raise _refusal(exc, f"{where}#{len(documents) + 1}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", where=where) from exc
    finally:
        loader.dispose()
    return documents


def read_text(path: Path, *, max_bytes: int) -> str:
    """A UTF-8 file of at most ``max_bytes``, refused before it is read in full when larger."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", where=str(path)) from exc
    if len(data) > max_bytes:
        raise ConfigError(f"larger than the limit of {max_bytes:,} bytes", where=str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("not UTF-8 text", where=str(path)) from exc
