"""A missing toolchain stops `wasmflow build` with one sentence that says how to install it (nothing is compiled).

Each test takes the toolchain away the way a new machine lacks it: a Python environment that has wasmflow but not
componentize-py, a PATH without Node.js or npm, a cache where `make toolchains` never ran.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.integration.authoring.conftest import author_env, new_project, wasmflow

pytestmark = pytest.mark.integration


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The whole error output, which must be exactly one line."""
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_without_componentize_py_the_build_says_to_pip_install_it(tmp_path: Path) -> None:
    project = new_project("map", "python", tmp_path)
    # A Python environment where wasmflow and its dependencies import, but no componentize-py is installed.
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    site = next(env_dir.glob("lib/python*/site-packages"))
    (site / "wasmflow-only.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    result = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", "from wasmflow.cli.main import main; main()", "build"],
        cwd=project,
        env=author_env(PATH=f"{env_dir / 'bin'}:/usr/bin:/bin"),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert error_line(result) == (
        "Error: toolchain: componentize-py is not installed: run `pip install componentize-py==0.25.1` in the "
        "Python environment of wasmflow"
    )
    assert not (project / "build" / "my-map.wasm").exists()


def test_without_componentize_js_the_build_says_to_npm_install_in_the_project(tmp_path: Path) -> None:
    project = new_project("filter", "javascript", tmp_path)
    npm = Path(subprocess.run(["which", "npm"], capture_output=True, text=True, check=True).stdout.strip())
    env = author_env(PATH=str(npm.parent), WASMFLOW_CACHE=str(tmp_path / "empty-cache"))
    assert error_line(wasmflow("build", cwd=project, env=env)) == (
        f"Error: toolchain: componentize-js is not installed: run `npm install` in {project} "
        "(its package.json pins the version)"
    )


def test_without_node_or_npm_the_build_says_to_install_node_first(tmp_path: Path) -> None:
    project = new_project("filter", "javascript", tmp_path)
    env = author_env(PATH=str(tmp_path / "no-tools"), WASMFLOW_CACHE=str(tmp_path / "empty-cache"))
    assert error_line(wasmflow("build", cwd=project, env=env)) == (
        "Error: toolchain: componentize-js is not installed and needs Node.js: install Node.js 20 or later with npm "
        f"(https://nodejs.org, or on Debian `apt-get install nodejs npm`), then run `npm install` in {project}"
    )


def test_with_componentize_js_but_no_node_the_build_says_to_install_node(tmp_path: Path) -> None:
    project = new_project("filter", "javascript", tmp_path)
    tools = subprocess.run(
        [str(Path(__file__).resolve().parents[3] / "hack" / "install-toolchains.sh"), "--print-path", "jco"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    assert tools.stdout.strip()  # componentize-js is installed in the default cache
    env = author_env(PATH=str(tmp_path / "no-tools"))
    assert error_line(wasmflow("build", cwd=project, env=env)) == (
        "Error: toolchain: Node.js is not installed (componentize-js runs on it): install Node.js 20 or later with "
        "npm (https://nodejs.org, or on Debian `apt-get install nodejs npm`)"
    )
