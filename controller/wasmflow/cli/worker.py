"""``wasmflow worker``: run one Dataflow's graph from the config the controller rendered (the worker pod's command)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from wasmflow.errors import WasmflowError
from wasmflow.worker.main import main


@click.command("worker")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
def worker_command(config_path: Path, verbose: bool) -> None:
    """Run the graph described by CONFIG (the Dataflow's rendered ConfigMap)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        main(config_path)
    except WasmflowError as exc:
        raise click.ClickException(str(exc)) from exc
