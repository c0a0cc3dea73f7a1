"""``wasmflow run --graph GRAPH.yaml``: run an Azure IoT Operations graph definition locally, unchanged.

Each operation's ``module`` (``repository:tag``) comes from ``--module NAME=PATH|OCI-REF`` (NAME is the module
reference as the graph writes it, or the operation's name) or, failing that, from ``--registry HOST[/PREFIX]``
joined with the reference. Every module is checked against the AIO worlds before it runs. Sources read
``--input`` and sinks write ``--output`` as JSON Lines, like ``wasmflow run``; the state store is in process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import IO

from prometheus_client import CollectorRegistry

from wasmflow.api.frontends.aio import GraphDefinition, definition_graph, parse_graph
from wasmflow.api.graph import Graph
from wasmflow.api.yaml_input import MAX_GRAPH_BYTES, read_text
from wasmflow.cli.sources import read_component
from wasmflow.connectors.jsonl import JsonLinesSink, JsonLinesSource
from wasmflow.contract.check import check_component
from wasmflow.engine.aio_host import AioNodeSpec, AioOperatorNode
from wasmflow.engine.aio_metrics import AioMetrics
from wasmflow.engine.aio_state import MemoryStateStore
from wasmflow.engine.host import EngineHost
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.engine.ports import Sink, Source
from wasmflow.engine.runtime import Runtime
from wasmflow.engine.time import FrontierTime
from wasmflow.engine.values import AIO_VALUES
from wasmflow.errors import ConfigError


def load_graph(path: Path) -> GraphDefinition:
    return parse_graph(read_text(path, max_bytes=MAX_GRAPH_BYTES), str(path))


def node_specs(graph: Graph, overrides: dict[str, str], registry: str | None, insecure: bool) -> list[AioNodeSpec]:
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
                timeout_seconds=1.0,
            )
        )
    return specs


def check(host: EngineHost, spec: AioNodeSpec) -> None:
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


async def run_checked_graph(
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
            check(host, spec)
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


def run_graph(
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
    graph = definition_graph(load_graph(path))
    unknown = set(inputs) - {"*"} - set(graph.sources)
    if unknown:
        raise ConfigError(f"no source operation named {', '.join(sorted(unknown))}", where="--input")
    specs = node_specs(graph, overrides, registry, insecure)
    return asyncio.run(run_checked_graph(graph, specs, inputs, output, cache_dir, max_message_size))
