"""``wasmflow wit``: print the WIT contract, or write it where a toolchain expects it."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from wasmflow.contract.wit import read_wit, rules_wit_files, wit_files


@click.command("wit")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Write the WIT files into this directory."
)
def wit_command(out: Path | None) -> None:
    """Print the WIT contract (wasmflow:operator) that operators implement, then the rules contracts
    (wasmflow:<kind>-rules) that business rules implement for a composed operator.

    With --out, the operator package goes into DIR and each rules package into DIR/rules/<kind>.wit (a package of
    its own: point a toolchain at that one file).
    """
    if out is None:
        click.echo(read_wit(), nl=False)
        for path in rules_wit_files():
            click.echo(f"\n// ---- {path.parent.name}/{path.name}\n")
            click.echo(path.read_text(encoding="utf-8"), nl=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for path in wit_files():
        shutil.copyfile(path, out / path.name)
        click.echo(str(out / path.name))
    (out / "rules").mkdir(exist_ok=True)
    for path in rules_wit_files():
        shutil.copyfile(path, out / "rules" / path.name)
        click.echo(str(out / "rules" / path.name))
