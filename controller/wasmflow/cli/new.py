"""``wasmflow new``: scaffold an operator project that builds and runs as it is."""

from __future__ import annotations

from pathlib import Path

import click

from wasmflow.cli.scaffold import LANGUAGES, render, validate
from wasmflow.cli.scaffold_composed import render_composed
from wasmflow.contract.signatures import OperatorKind
from wasmflow.errors import ConfigError


@click.command("new")
@click.argument("kind", type=click.Choice([k.value for k in OperatorKind]))
@click.argument("name")
@click.option("--lang", "language", type=click.Choice(LANGUAGES), default="python", show_default=True)
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path), help="Parent directory (default: .)"
)
@click.option(
    "--composed",
    is_flag=True,
    help="Business rules only (wasmflow:<kind>-rules, no SDK): `wasmflow build` composes them with wasmflow's adapter.",
)
def new_command(kind: str, name: str, language: str, directory: Path | None, composed: bool) -> None:
    """Create a new operator project NAME of the given KIND (map, filter, branch, accumulate)."""
    try:
        project = validate(name, kind, language, composed)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from exc
    root = (directory or Path.cwd()) / name
    if root.exists() and any(root.iterdir()):
        raise click.BadParameter(f"{root} exists and is not empty: choose another NAME or --dir", param_hint="NAME")
    for relative, content in sorted((render_composed(project) if project.composed else render(project)).items()):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    pattern = "business rules, composed at build" if project.composed else "operator"
    click.echo(f"created {root} ({project.language} {project.kind.value} {pattern})")
    source = "app.py" if project.language == "python" else "app.js"
    click.echo(f"next: edit the function at the top of {root / source}, then")
    click.echo(f"      cd {root} && wasmflow build && python test_operator.py")
