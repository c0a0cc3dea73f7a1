"""``wasmflow build``: compile an operator project with its language's toolchain, then check it against the contract.

The toolchains are the real ones: componentize-py (from PyPI) for Python, componentize-js (from npm) for JavaScript.
A missing toolchain gets one sentence on how to install it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click

from wasmflow.cli.inspect import render as render_report
from wasmflow.cli.scaffold import Project, validate
from wasmflow.contract.check import check_component
from wasmflow.contract.wit import wit_files
from wasmflow.errors import ConfigError


def load_project(root: Path) -> Project:
    path = root / "operator.json"
    if not path.exists():
        raise ConfigError("no operator.json here: run `wasmflow new KIND NAME` to create a project", where=str(root))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return validate(data["name"], data["operator"], data.get("language", "python"))
    except (json.JSONDecodeError, KeyError, ValueError) as exc:
        raise ConfigError(f"invalid project file: {exc}", where=str(path)) from exc


def find_componentize_py() -> str:
    for candidate in (Path(sys.executable).parent / "componentize-py", shutil.which("componentize-py")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise ConfigError(
        "componentize-py is not installed: run `pip install componentize-py==0.25.1` in the environment of wasmflow",
        where="toolchain",
    )


def find_componentize_js(root: Path) -> str:
    cache = Path(os.environ.get("WASMFLOW_CACHE") or Path.home() / ".cache" / "wasmflow") / "node"
    candidates = [root / "node_modules" / ".bin" / "componentize-js", shutil.which("componentize-js")]
    candidates += sorted(cache.glob("*/node_modules/.bin/componentize-js"), reverse=True)
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise ConfigError(
        f"componentize-js is not installed: run `npm install` in {root} (package.json pins it)", where="toolchain"
    )


def build_project(root: Path) -> tuple[Project, Path]:
    project = load_project(root)
    out = root / project.artifact
    out.parent.mkdir(parents=True, exist_ok=True)
    # Both toolchains resolve the WIT relative to the project (componentize-js only sees paths under it). A project
    # without its own wit/ builds against the contract shipped with this wasmflow, written to build/wit.
    wit = "wit"
    if not (root / "wit").is_dir():
        wit = "build/wit"
        (root / wit).mkdir(parents=True, exist_ok=True)
        for path in wit_files():
            shutil.copyfile(path, root / wit / path.name)
    if project.language == "python":
        cmd = [find_componentize_py(), "-d", wit, "-w", project.world, "componentize", "app", "-o", project.artifact]
    else:
        tool = find_componentize_js(root)
        cmd = [tool, "--wit", wit, "--world-name", project.world, "-o", project.artifact, "app.js"]
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-3000:]
        raise ConfigError(f"the {project.language} toolchain failed:\n{output}", where=str(root))
    return project, out


@click.command("build")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
def build_command(directory: Path) -> None:
    """Build the operator project in DIRECTORY into build/NAME.wasm and check it against the contract."""
    try:
        project, out = build_project(directory.resolve())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    data = out.read_bytes()
    report = check_component(data, expected_kind=project.kind)
    if not report.valid:
        click.echo(render_report(str(out), report), err=True)
        raise click.ClickException(f"{out} does not satisfy the wasmflow contract (problems above)")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    click.echo(f"built {out} ({len(data):,} bytes, {project.kind.value} operator)")
    click.echo(f"digest {digest}")
