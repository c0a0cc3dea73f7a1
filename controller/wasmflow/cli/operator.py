"""``wasmflow operator``: run the control plane (Kopf) against the current cluster."""

from __future__ import annotations

import logging

import click

from wasmflow.errors import ConfigError
from wasmflow.operator import runner
from wasmflow.operator.config import load_config


@click.command("operator")
@click.option(
    "--namespace", "-n", "namespaces", multiple=True, help="Watch this namespace (repeatable). Default: all namespaces."
)
@click.option("--all-namespaces", "-A", is_flag=True, help="Watch every namespace (the default without --namespace).")
@click.option("--liveness", default="http://0.0.0.0:8080/healthz", show_default=True, help="Liveness endpoint URL.")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
def operator_command(namespaces: tuple[str, ...], all_namespaces: bool, liveness: str, verbose: bool) -> None:
    """Run the controller: reconcile WasmModules and Dataflows into verified modules and worker Deployments."""
    if namespaces and all_namespaces:
        raise click.UsageError("--namespace and --all-namespaces exclude each other")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load_config()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    scope = runner.Scope(clusterwide=not namespaces, namespaces=namespaces)
    runner.run(config, scope, liveness_endpoint=liveness or None)
