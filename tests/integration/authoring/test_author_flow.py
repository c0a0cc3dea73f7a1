"""The author's path, tried as a new user would: `wasmflow new`, `wasmflow build`, `wasmflow run` on the sample.

Matrix: every kind in Python, and in JavaScript the two kinds whose generated glue differs most (filter returns a
bool; accumulate takes the window state and returns a message). JavaScript map and branch share that glue, and a
componentize-js build costs about twice a componentize-py one, so they would add time and no coverage. Each project
is built once; the edit tests rebuild one copy per language.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.authoring.conftest import Build, author_env, build, wasmflow

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

MATRIX = [
    ("map", "python"),
    ("filter", "python"),
    ("branch", "python"),
    ("accumulate", "python"),
    ("filter", "javascript"),
    ("accumulate", "javascript"),
]


def run_sample(project: Path) -> list[dict[str, Any]]:
    """The command line the project's README gives, with the sinks' messages on stdout."""
    name = project.name
    result = wasmflow(
        "run", "dataflow.yaml", "--module", f"{name}=build/{name}.wasm", "--input", "sample.jsonl", "--output", "-",
        cwd=project,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def values(outputs: list[dict[str, Any]], sink: str = "out") -> list[float]:
    return [json.loads(o["payload"])["value"] for o in outputs if o["sink"] == sink]


def outcome(kind: str, outputs: list[dict[str, Any]]) -> object:
    """What the sample (readings 21.5, 73.0, 48.25) becomes under each kind's template, as a comparable value."""
    bodies = [json.loads(o["payload"]) for o in outputs]
    if kind == "map":
        return [(o["sink"], b["value"], b["processedBy"]) for o, b in zip(outputs, bodies, strict=True)]
    if kind == "filter":
        return values(outputs)
    if kind == "branch":
        return values(outputs, "out"), values(outputs, "other")
    return [(b["count"], round(b["avg"], 3)) for b in bodies]


EXPECTED: dict[str, object] = {
    "map": [("out", 21.5, "my-map"), ("out", 73.0, "my-map"), ("out", 48.25, "my-map")],
    "filter": [73.0, 48.25],  # min 30 in the generated dataflow.yaml
    "branch": ([73.0], [21.5, 48.25]),  # threshold 50
    "accumulate": [(3, 47.583)],  # one window of 3
}


@pytest.mark.parametrize(("kind", "language"), MATRIX)
def test_a_new_project_runs_on_its_sample_without_any_edit(kind: str, language: str, built_project: Build) -> None:
    outputs = run_sample(built_project(kind, language))
    assert outcome(kind, outputs) == EXPECTED[kind]


@pytest.mark.parametrize(("kind", "language"), MATRIX)
def test_the_generated_test_passes(kind: str, language: str, built_project: Build) -> None:
    project = built_project(kind, language)
    env = author_env()
    python = shutil.which("python", path=env["PATH"])  # the author's `python`: wasmflow's environment, activated
    assert python is not None
    result = subprocess.run(
        [python, "test_operator.py"], cwd=project, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: the operator does what test_operator.py expects" in result.stdout


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"the template changed: {old!r} is no longer in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_an_edit_of_the_python_function_shows_in_the_output(
    built_project: Build, own_copy: Callable[[Path], Path]
) -> None:
    project = own_copy(built_project("map", "python"))
    edit(
        project / "app.py",
        '    body["processedBy"] = CONFIG.get("label", "my-map")\n',
        '    body["processedBy"] = CONFIG.get("label", "my-map")\n    body["value"] = body["value"] * 2\n',
    )
    assert build(project).stdout.startswith("built ")
    assert values(run_sample(project)) == [43.0, 146.0, 96.5]


def test_an_edit_of_the_javascript_function_shows_in_the_output(
    built_project: Build, own_copy: Callable[[Path], Path]
) -> None:
    project = own_copy(built_project("filter", "javascript"))
    edit(
        project / "app.js",
        "  return Number(body.value) >= Number(config.min ?? 0);\n",
        "  return body.sensor === 1;\n",
    )
    assert build(project).stdout.startswith("built ")
    assert values(run_sample(project)) == [21.5, 48.25]


def test_building_again_with_nothing_changed_compiles_nothing(built_project: Build) -> None:
    project = built_project("map", "python")
    first = (project / "build" / "my-map.wasm").read_bytes()
    result = build(project)
    assert result.stdout.startswith(f"up to date: {project / 'build' / 'my-map.wasm'}")
    assert "compiling" not in result.stderr
    assert (project / "build" / "my-map.wasm").read_bytes() == first
