"""``wasmflow crds``: print the CRDs (to pipe into `kubectl apply --server-side -f -`) or write them to a folder."""

from __future__ import annotations

from pathlib import Path

import click

from wasmflow.api.crd import crds, render_yaml, write


@click.command("crds")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Write one YAML file per CRD here.")
def crds_command(out: Path | None) -> None:
    """Print the WasmModule and Dataflow CRDs."""
    if out is not None:
        for path in write(out):
            click.echo(str(path))
        return
    click.echo("---\n".join(render_yaml(crd) for crd in crds().values()), nl=False)
