"""``wasmflow inspect``: check a component (a file, or an OCI reference) against the contract.

Exit 0 when it satisfies the contract, 1 when it does not, 2 on usage errors (click's convention).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from wasmflow.cli.sign import provenance, render_provenance
from wasmflow.cli.sources import read_component
from wasmflow.contract import parts
from wasmflow.contract.capabilities import Capability, ImportClass
from wasmflow.contract.check import check_component
from wasmflow.contract.report import ContractReport
from wasmflow.errors import WasmflowError


@click.command("inspect")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--capability",
    "capabilities",
    multiple=True,
    type=click.Choice([c.value for c in Capability]),
    help="A capability the WasmModule would grant (repeatable).",
)
@click.option("--strict", is_flag=True, help="Refuse imports that the granted capabilities do not cover.")
@click.option("--insecure", is_flag=True, help="Allow plain HTTP for an OCI reference.")
def inspect_command(source: str, as_json: bool, capabilities: tuple[str, ...], strict: bool, insecure: bool) -> None:
    """Check the component at SOURCE (a .wasm path or an OCI reference) against the wasmflow contract."""
    try:
        data = read_component(source, insecure=insecure)
    except WasmflowError as exc:
        raise click.BadParameter(str(exc), param_hint="SOURCE") from exc
    report = check_component(data, grants=capabilities, strict=strict)
    composition = _composition(data)
    described = None if Path(source).exists() else provenance(source, insecure=insecure)  # signatures, SBOMs
    if as_json:
        extra = {"provenance": described} if described else {}
        click.echo(json.dumps({**report.to_json(), "composition": composition, **extra}, indent=2))
    else:
        click.echo(render(source, report) + (f"\n{render_provenance(described)}" if described else ""))
        if composition is not None:
            click.echo(render_composition(composition))
    raise SystemExit(0 if report.valid else 1)


def _composition(data: bytes) -> dict[str, object] | None:
    """What a composed component is made of (``contract.parts``), or None for a component of one part."""
    try:
        found = parts.read_parts(data)
    except WasmflowError:
        return None  # the contract check has already said what is wrong with the bytes
    if found.memories < 2 and found.composition is None:
        return None
    return {
        "record": found.composition,
        "adapters": found.adapters,
        "components": found.components,
        "coreModules": found.core_modules,
        "memories": found.memories,
    }


def render_composition(composition: dict[str, object]) -> str:
    """The parts of a composed component: which adapter, which rules interface and version, which digests."""
    record = composition.get("record")
    lines = [
        f"parts      {composition['components']} nested components, {composition['coreModules']} core modules, "
        f"{composition['memories']} linear memories (each gets an equal share of limits.memory)"
    ]
    if isinstance(record, dict):
        if record.get("adapter"):
            lines.append(f"adapter    {record['adapter']} ({record.get('target')} {record.get('kind')} operator)")
            lines.append(f"rules      {record.get('rules')}")
        lines.append(f"socket     {record.get('socket')}")
        for plug in record.get("plugs") or []:
            lines.append(f"plug       {plug}")
        lines.append(f"composer   {record.get('composer')}")
    else:
        lines.append("composed   not by wasmflow compose (no composition record)")
    return "\n".join(lines)


def render(source: str, report: ContractReport) -> str:
    """A short human table: verdict, operator, world, imports by class, then every problem."""
    lines = [
        f"component  {Path(source).name if Path(source).exists() else source}  ({report.size:,} bytes)",
        f"valid      {'yes' if report.valid else 'NO'}",
        f"operator   {report.operator.value if report.operator else '-'}",
        f"world      {report.world or '-'}",
        "exports    " + (", ".join(report.exports) or "-"),
    ]
    if report.aio is not None:
        lines.insert(
            3,
            "aio        Azure IoT Operations operators: "
            + ", ".join(f"{o.operation} ({o.export}, process returns {o.returns.value})" for o in report.aio.operators),
        )
    granted = [i for i in report.imports if i.granted]
    denied = sorted({i.capability for i in report.imports if not i.granted and i.capability})
    unknown = [i.name for i in report.imports if i.kind is ImportClass.UNKNOWN]
    unserved = [i.name for i in report.imports if i.kind is ImportClass.DENIED_UNLESS_GRANTED and not i.capability]
    lines.append(
        f"imports    {len(report.imports)}: {len(granted)} provided"
        + (f", linked but denied unless granted: {', '.join(denied)}" if denied else "")
        + (f", unknown: {', '.join(unknown)}" if unknown else "")
        + (f", linked but every call fails: {', '.join(unserved)}" if unserved else "")
    )
    for p in report.problems:
        lines.append(f"problem    [{p.code.value}] {p.where}: {p.message}")
        if p.expected is not None or p.found is not None:
            lines.append(f"             expected: {p.expected or '-'}")
            lines.append(f"             found:    {p.found or '-'}")
    return "\n".join(lines)
