"""Entry point of the ``wasmflow`` console script.

Sub-commands live in their own modules under ``wasmflow.cli`` and are attached here, so this file is the table of
contents of the command line.
"""

from __future__ import annotations

import importlib
from typing import cast

import click

from wasmflow import __version__

#: Each sub-command by name, as "module:attribute". A command's module is imported only when that command runs, so
#: `wasmflow build` or `wasmflow push` does not pay for importing kopf and kubernetes (seconds per invocation).
COMMANDS = {
    "build": "wasmflow.cli.build:build_command",
    "compose": "wasmflow.cli.compose:compose_command",
    "crds": "wasmflow.cli.crds:crds_command",
    "graph": "wasmflow.cli.graph:graph_command",
    "inspect": "wasmflow.cli.inspect:inspect_command",
    "new": "wasmflow.cli.new:new_command",
    "operator": "wasmflow.cli.operator:operator_command",
    "push": "wasmflow.cli.push:push_command",
    "run": "wasmflow.cli.run:run_command",
    "sign": "wasmflow.cli.sign:sign_command",
    "verify": "wasmflow.cli.sign:verify_command",
    "wit": "wasmflow.cli.wit:wit_command",
    "worker": "wasmflow.cli.worker:worker_command",
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use (``--help`` imports them all to list them)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, attribute = COMMANDS[cmd_name].split(":")
        return cast(click.Command, getattr(importlib.import_module(module), attribute))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="wasmflow")
def cli() -> None:
    """wasmflow runs WebAssembly data-processing pipelines, on Kubernetes or on a laptop."""


def main() -> None:
    cli()
