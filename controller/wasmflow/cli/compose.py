"""``wasmflow compose``: fuse business rules with a platform layer into one operator component (DESIGN.md 2b).

Two forms:
  wasmflow compose RULES.wasm --kind map [--world aio-custom] -o OUT.wasm   rules + the adapter wasmflow ships
  wasmflow compose SOCKET.wasm --plug PLUG.wasm [--plug ...] -o OUT.wasm    any platform layer + its plugs

The output is checked against the contract before it is written; a refusal names the interface, the function and
the types on both sides. Exit 0 when written, 1 when refused, 2 on usage errors.
"""

from __future__ import annotations

from pathlib import Path

import click

from wasmflow.cli.inspect import render
from wasmflow.cli.sources import read_component
from wasmflow.contract import compose
from wasmflow.contract.signatures import OperatorKind
from wasmflow.errors import WasmflowError

WORLDS = sorted({world for _, world in compose.ADAPTERS})


@click.command("compose")
@click.argument("source")
@click.option(
    "--kind",
    type=click.Choice([k.value for k in OperatorKind]),
    help="SOURCE is a rules component of this operator kind: fuse it with the adapter wasmflow ships.",
)
@click.option(
    "--world",
    type=click.Choice(WORLDS),
    default="wasmflow",
    show_default=True,
    help="With --kind: the operator world of the adapter (aio-custom: AIO's map over the map:custom sample rules).",
)
@click.option(
    "--plug", "plugs", multiple=True, help="SOURCE is a platform layer: a component plugged into its imports."
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Where to write.")
@click.option("--insecure", is_flag=True, help="Allow plain HTTP for OCI references.")
def compose_command(
    source: str, kind: str | None, world: str, plugs: tuple[str, ...], output: Path, insecure: bool
) -> None:
    """Fuse the rules component SOURCE with wasmflow's adapter (--kind), or plug components into SOURCE (--plug)."""
    if (kind is None) == (not plugs):
        raise click.UsageError("give either --kind (SOURCE is rules) or --plug (SOURCE is a platform layer)")
    try:
        data = read_component(source, insecure=insecure)
        if kind is not None:
            composed = compose.compose_rules(data, kind, world)
        else:
            composed = compose.compose(data, [read_component(p, insecure=insecure) for p in plugs])
    except WasmflowError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from exc
    output.parent.mkdir(parents=True, exist_ok=True)
    staged = output.with_name(f".{output.name}.partial")
    staged.write_bytes(composed.data)
    staged.replace(output)
    click.echo(render(str(output), composed.report))
