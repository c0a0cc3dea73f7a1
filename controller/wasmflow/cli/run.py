"""``wasmflow run``: run a Dataflow manifest locally, no cluster, with JSON Lines in and out.

Modules come from the WasmModule manifests given on the command line (pulled from their OCI reference) or from
``--module NAME=PATH|OCI-REF``. Each is checked against the contract before it runs. Sources read ``--input``
(one file for every source, or ``SOURCE=FILE`` per source; ``-`` is stdin), sinks write ``--output`` (``-`` is
stdout) with the sink's name added. A per-node summary goes to stderr at the end.

``--graph GRAPH.yaml`` only selects the other front-end: an Azure IoT Operations graph definition, run unchanged on
the same runtime (with AIO's timestamp frontier). Each operation's ``module`` (``repository:tag``) comes from
``--module NAME=PATH|OCI-REF`` (NAME is the module reference as the graph writes it, or the operation's name) or,
failing that, from ``--registry HOST[/PREFIX]`` joined with the reference; each is checked against the AIO worlds
before it runs; the state store is in process.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import IO

import click
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from wasmflow.api.dataflow import Dataflow, DataflowLimits, ErrorAction, NodeType
from wasmflow.api.frontends.aio import GraphDefinition, definition_graph, parse_graph
from wasmflow.api.frontends.dataflow import dataflow_graph
from wasmflow.api.graph import Graph, GraphError
from wasmflow.api.kinds import OperatorKind
from wasmflow.api.manifests import load_manifests
from wasmflow.api.wasmmodule import WasmModule
from wasmflow.api.yaml_input import MAX_GRAPH_BYTES, read_text
from wasmflow.cli.build import cache_base
from wasmflow.cli.sources import read_component
from wasmflow.connectors.jsonl import JsonLinesSink, JsonLinesSource
from wasmflow.contract.check import check_component
from wasmflow.engine.aio_host import AioNodeSpec, AioOperatorNode
from wasmflow.engine.aio_metrics import AioMetrics
from wasmflow.engine.aio_state import MemoryStateStore
from wasmflow.engine.host import EngineHost, OperatorSpec
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.engine.ports import Sink, Source
from wasmflow.engine.runtime import Runtime
from wasmflow.engine.time import FrontierTime
from wasmflow.engine.values import AIO_VALUES
from wasmflow.errors import ConfigError, EngineError, WasmflowError

log = logging.getLogger("wasmflow.run")


def default_cache_dir() -> Path:
    return cache_base() / "compiled"


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    result = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name or not target:
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}", param_hint=option)
        result[name] = target
    return result


def _collect(paths: tuple[Path, ...]) -> tuple[Dataflow, dict[str, WasmModule]]:
    dataflows: list[Dataflow] = []
    modules: dict[str, WasmModule] = {}
    for path in paths:
        for manifest in load_manifests(path):
            if isinstance(manifest, Dataflow):
                dataflows.append(manifest)
            else:
                modules[manifest.metadata.name] = manifest
    if len(dataflows) != 1:
        found = ", ".join(d.metadata.name for d in dataflows) or "none"
        raise ConfigError(f"expected exactly one Dataflow among the manifests, found {found}", where=str(paths[0]))
    return dataflows[0], modules


def _operator_specs(
    dataflow: Dataflow, modules: dict[str, WasmModule], overrides: dict[str, str], insecure: bool
) -> list[OperatorSpec]:
    specs = []
    loaded: dict[str, bytes] = {}
    for index, node in enumerate(dataflow.spec.nodes):
        if not node.type.is_operator:
            continue
        assert node.module is not None
        where = f"spec.nodes[{index}] ({node.name}).module"
        module = modules.get(node.module)
        if node.module not in loaded:
            if node.module in overrides:
                try:
                    loaded[node.module] = read_component(overrides[node.module], insecure=insecure)
                except ConfigError as exc:  # a path or reference the user typed: a usage error (exit 2)
                    raise click.BadParameter(f"{node.module}={exc}", param_hint="--module") from exc
            elif module is not None and module.spec.source.oci is not None:
                oci = module.spec.source.oci
                loaded[node.module] = read_component(oci.reference, insecure=insecure or oci.insecure)
            elif module is not None:
                raise ConfigError(
                    f"WasmModule {node.module!r} comes from a ConfigMap: pass --module {node.module}=PATH", where=where
                )
            else:
                raise ConfigError(
                    f"no WasmModule manifest named {node.module!r} and no --module {node.module}=PATH", where=where
                )
        data = loaded[node.module]
        grants = frozenset(str(c) for c in module.spec.capabilities) if module else frozenset()
        limits = module.spec.limits if module else None
        specs.append(
            OperatorSpec(
                node=node.name,
                kind=OperatorKind(node.type.value),
                component=data,
                memory_bytes=limits.memory_bytes if limits else 64 * 2**20,
                timeout_seconds=limits.timeout_seconds if limits else 0.1,
                fuel=limits.fuel if limits else None,
                grants=grants,
                configuration=tuple(node.configuration.items()),
            )
        )
    return specs


def _check(host: EngineHost, spec: OperatorSpec, module: str, strict: bool) -> None:
    report = host.check(spec, strict=strict)
    if not report.valid:
        raise ConfigError(
            f"module {module!r} does not satisfy the contract: {report.summary()}", where=f"node {spec.node}"
        )


def _summary(pipeline: Runtime) -> str:
    """The table printed after a run, the same for a Dataflow and an AIO graph (one runtime, one summary)."""
    rows = [("node", "type", "in", "out", "dropped", "dead-letter", "failures", "p50", "p99")]
    for name in pipeline.graph.order:
        s = pipeline.stats[name]
        lat = s.latencies
        p50 = f"{lat.median() * 1e3:.2f}ms" if lat else "-"
        p99 = f"{lat.quantile(0.99) * 1e3:.2f}ms" if lat else "-"
        failures = ", ".join(f"{k}={v}" for k, v in sorted(s.failures.items())) or "-"
        rows.append(
            (
                name,
                pipeline.graph.step(name).value,
                str(s.received),
                str(s.emitted),
                str(s.dropped),
                str(s.dead_lettered),
                failures,
                p50,
                p99,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows)


async def _run(
    dataflow: Dataflow,
    specs: list[OperatorSpec],
    strictness: dict[str, bool],
    inputs: dict[str, str],
    output: IO[str],
    cache_dir: Path,
    max_message_size: int,
) -> tuple[Runtime, list[JsonLinesSource]]:
    graph = dataflow_graph(dataflow.spec)
    registry = CollectorRegistry()
    metrics = EngineMetrics.create(registry)
    with EngineHost(cache_dir=cache_dir, metrics=metrics) as host:
        nodes = {n.name: n for n in dataflow.spec.nodes}
        for spec in specs:
            module = nodes[spec.node].module or spec.node
            _check(host, spec, module, strict=strictness.get(module, False))
        operators = {spec.node: host.load(spec) for spec in specs}
        try:
            readers = {
                name: JsonLinesSource(inputs.get(name, inputs.get("*", "-")), max_message_size=max_message_size)
                for name in graph.sources
            }
            sinks: dict[str, Sink] = {name: JsonLinesSink(name, output) for name in graph.sinks}
            dead_letters: dict[tuple[str, str], Sink] = {}
            for node in [*dataflow.spec.nodes, None]:
                policy = dataflow.spec.error_policy if node is None else node.error_policy
                if policy and policy.action is ErrorAction.DEAD_LETTER and policy.endpoint and policy.topic:
                    dead_letters[(policy.endpoint, policy.topic)] = JsonLinesSink(f"dead-letter:{policy.topic}", output)
            sources: dict[str, Source] = dict(readers)
            pipeline = Runtime(
                graph,
                error_policy=dataflow.spec.error_policy,
                operators=operators,
                sources=sources,
                sinks=sinks,
                dead_letters=dead_letters,
                metrics=metrics,
            )
            await pipeline.run()
        finally:
            for operator in operators.values():
                operator.close()
    return pipeline, list(readers.values())


@click.command("run")
@click.argument("manifests", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--graph",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Run this Azure IoT Operations graph definition (YAML) instead of a Dataflow.",
)
@click.option("--registry", metavar="HOST[/PREFIX]", help="With --graph: where the graph's module references live.")
@click.option(
    "--module", "modules", multiple=True, metavar="NAME=PATH|OCI-REF", help="Use this component for module NAME."
)
@click.option("--input", "inputs", multiple=True, metavar="FILE|SOURCE=FILE", help="JSON Lines input ('-' = stdin).")
@click.option("--output", default="-", show_default=True, help="JSON Lines output file ('-' = stdout).")
@click.option("--insecure", is_flag=True, help="Allow plain HTTP when pulling OCI references.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Compiled-component cache.")
@click.option("--quiet", "-q", is_flag=True, help="No per-node summary.")
@click.option(
    "--max-message-size",
    metavar="QUANTITY",
    help="Largest input message (1Ki to 16Mi, e.g. 4Mi); default: the Dataflow's spec.limits.maxMessageSize, 1Mi "
    "for --graph. A larger one goes to the error policy.",
)
def run_command(
    manifests: tuple[Path, ...],
    modules: tuple[str, ...],
    inputs: tuple[str, ...],
    output: str,
    insecure: bool,
    cache_dir: Path | None,
    quiet: bool,
    graph: Path | None,
    registry: str | None,
    max_message_size: str | None,
) -> None:
    """Run the Dataflow in MANIFESTS locally (WasmModule manifests may follow it), or an AIO graph with --graph."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    size_limit = _size_option(max_message_size)
    routes = {}
    for value in inputs:
        name, sep, path = value.partition("=")
        routes[name if sep else "*"] = path if sep else value
    if graph is not None:
        limit = size_limit or DataflowLimits()
        _run_aio_graph(graph, _pairs(modules, "--module"), registry, routes, output, insecure, cache_dir, quiet, limit)
        return
    if not manifests:
        raise click.UsageError("give the Dataflow manifest(s), or --graph GRAPH.yaml")
    try:
        dataflow, known = _collect(manifests)
        try:
            dataflow_graph(dataflow.spec)
        except GraphError as exc:
            raise click.ClickException(
                "invalid graph:\n" + "\n".join(f"  {p.where}: {p.message}" for p in exc.problems)
            ) from exc
        unknown_routes = set(routes) - {"*"} - {n.name for n in dataflow.spec.nodes if n.type is NodeType.SOURCE}
        if unknown_routes:
            raise click.BadParameter(f"no source node named {', '.join(sorted(unknown_routes))}", param_hint="--input")
        specs = _operator_specs(dataflow, known, _pairs(modules, "--module"), insecure)
        stream: IO[str] = sys.stdout if output == "-" else Path(output).open("w", encoding="utf-8")  # noqa: SIM115
        try:
            strictness = {name: m.spec.strict for name, m in known.items()}
            pipeline, readers = asyncio.run(
                _run(
                    dataflow,
                    specs,
                    strictness,
                    routes,
                    stream,
                    cache_dir or default_cache_dir(),
                    (size_limit or dataflow.spec.limits).max_message_bytes,
                )
            )
        finally:
            if stream is not sys.stdout:
                stream.close()
    except (ConfigError, EngineError) as exc:
        raise click.ClickException(str(exc)) from exc
    except WasmflowError as exc:
        raise click.ClickException(str(exc)) from exc
    if not quiet:
        click.echo(_summary(pipeline), err=True)
    bad = sum(len(r.errors) for r in readers)
    if bad:
        raise click.ClickException(f"{bad} input line(s) were invalid and skipped (see the errors above)")


def _size_option(value: str | None) -> DataflowLimits | None:
    """``--max-message-size`` as the limits it sets, checked as ``spec.limits.maxMessageSize`` is."""
    if value is None:
        return None
    try:
        return DataflowLimits(max_message_size=value)
    except ValidationError as exc:
        text = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise click.BadParameter(f"{value!r}: {text}", param_hint="--max-message-size") from exc


def _run_aio_graph(
    graph: Path,
    overrides: dict[str, str],
    registry: str | None,
    routes: dict[str, str],
    output: str,
    insecure: bool,
    cache_dir: Path | None,
    quiet: bool,
    limits: DataflowLimits,
) -> None:
    stream: IO[str] = sys.stdout if output == "-" else Path(output).open("w", encoding="utf-8")  # noqa: SIM115
    try:
        pipeline = _run_graph_file(
            graph,
            overrides,
            registry,
            routes,
            stream,
            insecure,
            cache_dir or default_cache_dir(),
            max_message_size=limits.max_message_bytes,
        )
    except GraphError as exc:
        raise click.ClickException(
            "invalid graph:\n" + "\n".join(f"  {p.where}: {p.message}" for p in exc.problems)
        ) from exc
    except WasmflowError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if stream is not sys.stdout:
            stream.close()
    if not quiet:
        click.echo(_summary(pipeline), err=True)
    bad = sum(len(s.errors) for s in pipeline.sources.values() if isinstance(s, JsonLinesSource))
    if bad:
        raise click.ClickException(f"{bad} input line(s) were invalid and skipped (see the errors above)")


#: The time limit per message of an AIO graph's modules under ``wasmflow run --graph`` (a module has no WasmModule
#: to carry its limits here).
GRAPH_MODULE_TIMEOUT_SECONDS = 1.0


def _load_graph(path: Path) -> GraphDefinition:
    return parse_graph(read_text(path, max_bytes=MAX_GRAPH_BYTES), str(path))


def _graph_node_specs(
    graph: Graph, overrides: dict[str, str], registry: str | None, insecure: bool
) -> list[AioNodeSpec]:
    """The component of every operation, read once per distinct source."""
    loaded: dict[str, bytes] = {}
    specs = []
    for name in graph.order:
        node = graph.nodes[name]
        if node.module is None:
            continue
        source = overrides.get(name) or overrides.get(node.module)
        if source is None and registry:
            source = f"{registry.rstrip('/')}/{node.module}"
        if source is None:
            raise ConfigError(
                f"no component for module {node.module!r}: pass --module {node.module}=PATH|OCI-REF or --registry HOST",
                where=f"operation {name}",
            )
        if source not in loaded:
            loaded[source] = read_component(source, insecure=insecure)
        specs.append(
            AioNodeSpec(
                node=name,
                operation=node.step.value,
                component=loaded[source],
                parameters=node.parameters,
                timeout_seconds=GRAPH_MODULE_TIMEOUT_SECONDS,
            )
        )
    return specs


def _check_graph_module(host: EngineHost, spec: AioNodeSpec) -> None:
    """The module must implement the operation's AIO world (checked with the engine's compiled component)."""
    engine, component = host.compile(spec.compile_spec())
    report = check_component(spec.component, engine=engine, component=component)
    problems = [f"[{p.code.value}] {p.where}: {p.message}" for p in report.problems]
    if report.aio is None:
        problems.append("the module implements no Azure IoT Operations operator world")
    elif report.aio.operator(spec.operation) is None:
        problems.append(
            f"the module exports no AIO {spec.operation} operator (it exports {', '.join(report.aio.operations)})"
        )
    if problems:
        raise ConfigError("; ".join(problems), where=f"operation {spec.node}")


async def _run_checked_graph(
    graph: Graph,
    specs: list[AioNodeSpec],
    inputs: dict[str, str],
    output: IO[str],
    cache_dir: Path,
    max_message_size: int | None = None,
) -> Runtime:
    registry = CollectorRegistry()
    metrics = EngineMetrics.create(registry)
    aio_metrics = AioMetrics(registry)
    state = MemoryStateStore()
    with EngineHost(cache_dir=cache_dir, metrics=metrics) as host:
        for spec in specs:
            _check_graph_module(host, spec)
        operators: dict[str, AioOperatorNode] = {}
        try:
            for spec in specs:
                node = AioOperatorNode(host, spec, state=state, aio_metrics=aio_metrics)
                node.start()
                operators[spec.node] = node
            sources: dict[str, Source] = {
                name: JsonLinesSource(inputs.get(name, inputs.get("*", "-")), max_message_size=max_message_size)
                for name in graph.sources
            }
            sinks: dict[str, Sink] = {name: JsonLinesSink(name, output) for name in graph.sinks}
            pipeline = Runtime(
                graph,
                operators=operators,
                sources=sources,
                sinks=sinks,
                metrics=metrics,
                time=FrontierTime(),
                values=AIO_VALUES,
            )
            await pipeline.run()
        finally:
            for operator in operators.values():
                operator.close()
    return pipeline


def _run_graph_file(
    path: Path,
    overrides: dict[str, str],
    registry: str | None,
    inputs: dict[str, str],
    output: IO[str],
    insecure: bool,
    cache_dir: Path,
    *,
    max_message_size: int | None = None,
) -> Runtime:
    """Parse, check, load and run the graph at ``path``; ConfigError/EngineError say what is wrong and where."""
    graph = definition_graph(_load_graph(path))
    unknown = set(inputs) - {"*"} - set(graph.sources)
    if unknown:
        raise ConfigError(f"no source operation named {', '.join(sorted(unknown))}", where="--input")
    specs = _graph_node_specs(graph, overrides, registry, insecure)
    return asyncio.run(_run_checked_graph(graph, specs, inputs, output, cache_dir, max_message_size))
