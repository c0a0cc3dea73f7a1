"""Operator projects made the way an author makes them: `wasmflow new`, then `wasmflow build`, in a temp directory.

Each (kind, language) project is created and built once per module and shared by the tests that only read it; a
test that edits a project works on its own copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
WASMFLOW = str(BIN / "wasmflow")

Build = Callable[[str, str], Path]


def author_env(**overrides: str) -> dict[str, str]:
    """The environment of an author whose shell has wasmflow's environment activated."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(overrides)
    return env


def wasmflow(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WASMFLOW, *args], cwd=cwd, env=env or author_env(), capture_output=True, text=True, check=False, timeout=900
    )


def new_project(kind: str, language: str, parent: Path, name: str | None = None) -> Path:
    name = name or f"my-{kind}"
    result = wasmflow("new", kind, name, "--lang", language, "--dir", str(parent))
    assert result.returncode == 0, result.stderr
    return parent / name


def build(project: Path) -> subprocess.CompletedProcess[str]:
    """`wasmflow build` run from inside the project, as its README says."""
    result = wasmflow("build", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """``built_project(kind, language)``: the path of a fresh, built project (made once per module)."""
    made: dict[tuple[str, str], Path] = {}

    def get(kind: str, language: str) -> Path:
        if (kind, language) not in made:
            project = new_project(kind, language, tmp_path_factory.mktemp(f"{language}-{kind}"))
            build(project)
            made[kind, language] = project
        return made[kind, language]

    return get


@pytest.fixture
def own_copy(tmp_path: Path) -> Callable[[Path], Path]:
    """A copy of a built project (its build/ included) that a test may edit."""

    def copy(project: Path) -> Path:
        target = tmp_path / project.name
        shutil.copytree(project, target, symlinks=True)
        return target

    return copy
