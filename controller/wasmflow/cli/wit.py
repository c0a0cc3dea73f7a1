"""``wasmflow wit``: print the WIT contract, or write it where a toolchain expects it."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from wasmflow.contract.wit import read_wit, wit_files


@click.command("wit")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Write the WIT files into this directory."
)
def wit_command(out: Path | None) -> None:
    """Print the WIT contract (wasmflow:operator) that operators implement."""
    if out is None:
        click.echo(read_wit(), nl=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for path in wit_files():
        shutil.copyfile(path, out / path.name)
        click.echo(str(out / path.name))
