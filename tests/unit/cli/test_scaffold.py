"""What ``wasmflow new`` writes, checked without building anything."""

from __future__ import annotations

import ast
import json

import pytest
import yaml

from wasmflow.cli.scaffold import Project, render, validate
from wasmflow.contract.signatures import OperatorKind
from wasmflow.errors import ConfigError


@pytest.mark.parametrize("kind", list(OperatorKind))
@pytest.mark.parametrize("language", ["python", "javascript"])
def test_every_project_has_the_files_an_author_needs(kind: OperatorKind, language: str) -> None:
    files = render(Project("my-op", kind, language))
    app = "app.py" if language == "python" else "app.js"
    for required in (app, "wit/operator.wit", "sample.jsonl", "test_operator.py", "README.md", "dataflow.yaml"):
        assert required in files
    assert json.loads(files["operator.json"]) == {"name": "my-op", "operator": kind.value, "language": language}
    assert len(files["README.md"].splitlines()) <= 6


@pytest.mark.parametrize("kind", list(OperatorKind))
def test_the_local_dataflow_wires_the_operator_between_a_source_and_sinks(kind: OperatorKind) -> None:
    manifest = yaml.safe_load(render(Project("my-op", kind, "python"))["dataflow.yaml"])
    nodes = {n["name"]: n for n in manifest["spec"]["nodes"]}
    assert nodes["my-op"]["type"] == kind.value
    assert nodes["my-op"]["module"] == "my-op"
    edges = manifest["spec"]["edges"]
    assert {"from": "in", "to": "my-op"} in edges
    if kind is OperatorKind.BRANCH:
        assert {e.get("arm") for e in edges if e["from"] == "my-op"} == {True, False}
    if kind is OperatorKind.ACCUMULATE:
        assert nodes["my-op"]["window"] == {"count": 3}


def test_the_python_template_names_the_function_to_fill_in() -> None:
    app = render(Project("f2c", OperatorKind.MAP, "python"))["app.py"]
    assert "def transform(body: dict) -> dict:" in app
    assert "class Map(exports.Map):" in app


def test_sample_input_is_json_lines_with_topic_and_payload() -> None:
    sample = render(Project("x", OperatorKind.FILTER, "python"))["sample.jsonl"]
    rows = [json.loads(line) for line in sample.splitlines()]
    assert all({"topic", "payload"} <= row.keys() for row in rows)


@pytest.mark.parametrize("name", ["My-Op", "1op", "op_", "-op", "a" * 64, ""])
def test_names_must_be_dns_labels(name: str) -> None:
    with pytest.raises(ConfigError, match="lowercase DNS label"):
        validate(name, "map", "python")


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be one of python, javascript"):
        validate("op", "map", "rust")


@pytest.mark.parametrize(
    ("kind", "configuration"),
    [
        (OperatorKind.MAP, {"label": "my-op"}),
        (OperatorKind.FILTER, {"min": "30"}),
        (OperatorKind.BRANCH, {"threshold": "50"}),
        (OperatorKind.ACCUMULATE, {}),
    ],
)
def test_the_local_dataflow_configures_what_the_template_reads(
    kind: OperatorKind, configuration: dict[str, str]
) -> None:
    files = render(Project("my-op", kind, "python"))
    node = next(n for n in yaml.safe_load(files["dataflow.yaml"])["spec"]["nodes"] if n["name"] == "my-op")
    assert node["configuration"] == configuration
    for key in configuration:
        assert f'CONFIG.get("{key}"' in files["app.py"]
        assert f"config.{key}" in render(Project("my-op", kind, "javascript"))["app.js"]


@pytest.mark.parametrize("kind", list(OperatorKind))
@pytest.mark.parametrize("language", ["python", "javascript"])
def test_the_generated_test_is_python_that_asserts_the_outcome_on_the_sample(kind: OperatorKind, language: str) -> None:
    source = render(Project("my-op", kind, language))["test_operator.py"]
    tree = ast.parse(source)
    test = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name.startswith("test_"))
    asserts = [node for node in ast.walk(test) if isinstance(node, ast.Assert)]
    assert len(asserts) == 1
    assert ast.unparse(asserts[0].test).startswith("actual == ")
    assert '"my-op=build/my-op.wasm"' in source
