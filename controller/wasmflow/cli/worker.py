"""``wasmflow worker``: run one Dataflow's graph from the config the controller rendered (the worker pod's command)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from wasmflow.errors import WasmflowError
from wasmflow.worker.main import main


@click.command("worker")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Outside a pod: read the config's absolute paths (cache, secrets, module files) under this folder.",
)
@click.option("--http-port", type=click.IntRange(1, 65535), help="Serve /metrics, /healthz, /readyz on this port.")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
def worker_command(config_path: Path, root: Path | None, http_port: int | None, verbose: bool) -> None:
    """Run the graph described by CONFIG (the Dataflow's rendered ConfigMap).

    In a pod the config and its volumes are where the controller's Deployment mounts them. To run a Dataflow's
    workers elsewhere (debugging, or tests without a kubelet), lay the volumes out under --root and pick a port.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        main(config_path, root=root, http_port=http_port)
    except WasmflowError as exc:
        raise click.ClickException(str(exc)) from exc
