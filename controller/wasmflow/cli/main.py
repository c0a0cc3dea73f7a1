"""Entry point of the ``wasmflow`` console script.

Sub-commands live in their own modules under ``wasmflow.cli`` and are attached here, so this file is the table of
contents of the command line.
"""

from __future__ import annotations

import click

from wasmflow import __version__
from wasmflow.cli.build import build_command
from wasmflow.cli.crds import crds_command
from wasmflow.cli.inspect import inspect_command
from wasmflow.cli.new import new_command
from wasmflow.cli.operator import operator_command
from wasmflow.cli.push import push_command
from wasmflow.cli.run import run_command
from wasmflow.cli.wit import wit_command
from wasmflow.cli.worker import worker_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="wasmflow")
def cli() -> None:
    """wasmflow runs WebAssembly data-processing pipelines, on Kubernetes or on a laptop."""


cli.add_command(build_command)
cli.add_command(crds_command)
cli.add_command(inspect_command)
cli.add_command(new_command)
cli.add_command(operator_command)
cli.add_command(push_command)
cli.add_command(run_command)
cli.add_command(wit_command)
cli.add_command(worker_command)


def main() -> None:
    cli()
