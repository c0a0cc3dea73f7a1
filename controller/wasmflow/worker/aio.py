"""The worker for an Azure IoT Operations graph definition: MQTT in, AIO operators, MQTT out, the same HTTP endpoints.

It reads an ``AioWorkerConfig`` (``kind: aio-graph``), fetches every module by its pinned digest, checks each against
the AIO world of its operation (in threads, as the worker for our graphs loads), and runs the graph on the one
runtime (engine/runtime.py) with AIO's timestamp frontier: dead-letter and the sink window as for every graph. The
AIO operators' own metrics are served on /metrics next to the engine's, labelled by node. The state store is in
process (shared by the operators of this worker), or, with ``state_store``, kept in the broker and shared by every
replica (connectors/mqtt_state.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry

from wasmflow.api.dataflow import ErrorAction
from wasmflow.api.dataflow_graph import state_topic_prefix
from wasmflow.api.frontends.aio import definition_graph, parse_graph
from wasmflow.api.frontends.dataflow import MAX_IN_FLIGHT
from wasmflow.api.graph import Step
from wasmflow.api.workerconfig import AioModule, AioWorkerConfig, WorkerConfig
from wasmflow.connectors.mqtt import MqttSettings, MqttSink, MqttSource
from wasmflow.connectors.mqtt_settings import DEFAULT_RECEIVE_MAXIMUM
from wasmflow.connectors.mqtt_state import MqttStateStore
from wasmflow.contract.check import check_component
from wasmflow.engine.aio_host import AioNodeSpec, AioOperatorNode
from wasmflow.engine.aio_metrics import AioMetrics
from wasmflow.engine.aio_state import MemoryStateStore, StateStore
from wasmflow.engine.host import EngineHost
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.engine.ports import Sink, Source
from wasmflow.engine.runtime import Runtime
from wasmflow.engine.time import FrontierTime
from wasmflow.engine.values import AIO_VALUES
from wasmflow.errors import ConfigError, ContractError
from wasmflow.oci.pull import Access, pull_graph
from wasmflow.worker.endpoints import endpoint_settings
from wasmflow.worker.http import Readiness, serve
from wasmflow.worker.lifecycle import Health, run_graph
from wasmflow.worker.modules import fetch_module

log = logging.getLogger("wasmflow.worker.aio")


class AioWorker:
    def __init__(self, config: AioWorkerConfig) -> None:
        self.config = config
        definition = parse_graph(config.definition, "definition")
        self.graph = definition_graph(definition, config.parameters, config.sources, config.sinks)
        missing = [n for n in self.graph.sources if n not in config.sources]
        missing += [n for n in self.graph.sinks if n not in config.sinks]
        if missing:
            raise ConfigError(f"no endpoint bound to {', '.join(missing)}", where="sources/sinks")
        self.registry = CollectorRegistry()
        self.metrics = EngineMetrics.create(self.registry)
        self.aio_metrics = AioMetrics(self.registry)
        self.loaded = False
        self.sources: dict[str, MqttSource] = {}
        self.sinks: dict[str, MqttSink] = {}
        self.pipeline: Runtime | None = None
        self._closers: list[Callable[[], None]] = []
        self.health = Health()

    def _settings(self, endpoint: str, role: str, *, source: bool = False) -> MqttSettings:
        config = self.config
        if endpoint not in config.endpoints:
            raise ConfigError(f"endpoint {endpoint!r} is not in endpoints", where=f"{role}")
        safe_role = "".join(c if c.isalnum() or c in "-_" else "-" for c in role)
        return endpoint_settings(
            config.endpoints[endpoint],
            config.endpoint_files.get(endpoint),
            config.namespace,
            config.dataflow,
            safe_role,
            max_message_size=config.limits.max_message_bytes if source else None,
        )

    def _state_store(self) -> StateStore:
        """In process, unless the replicas share one in the broker (connectors/mqtt_state.py says what it keeps)."""
        config = self.config
        node_id = f"{config.namespace}/{config.dataflow}/{os.environ.get('HOSTNAME') or socket.gethostname()}"
        if config.state_store is None:
            return MemoryStateStore(node_id=node_id, limits=config.state_limits)
        prefix = state_topic_prefix(config.namespace, config.dataflow, config.state_store.topic_prefix)
        settings = self._settings(config.state_store.endpoint, "state")
        shared = MqttStateStore(settings, prefix, node_id=node_id, limits=config.state_limits)
        shared.start()
        self._closers.append(shared.close)
        return shared

    def _feeds_accumulate(self, source: str) -> bool:
        """Whether an accumulate is downstream of ``source``. It holds its window's items unacknowledged until the
        window closes, and a window takes whatever its time span brings: the source then advertises MQTT's
        largest Receive Maximum, or a busy window would be cut at 64 items (the rest pushed into later windows)."""
        seen, todo = set(), [source]
        while todo:
            name = todo.pop()
            if self.graph.step(name) is Step.ACCUMULATE:
                return True
            for edge in self.graph.outputs[name]:
                if edge.target not in seen:
                    seen.add(edge.target)
                    todo.append(edge.target)
        return False

    def readiness(self) -> Readiness:
        reasons = [] if self.loaded else ["modules not loaded yet"]
        if self.health.failure is not None:
            reasons.insert(0, f"failed: {self.health.failure}")
        for name, source in self.sources.items():
            if not source.connected:
                reasons.append(f"source {name} not connected" + (f": {source.last_error}" if source.last_error else ""))
        for name, sink in self.sinks.items():
            if not sink.connected:
                reasons.append(f"sink {name} not connected" + (f": {sink.last_error}" if sink.last_error else ""))
        return Readiness(ready=not reasons, reasons=tuple(reasons))

    async def _load(self, host: EngineHost) -> dict[str, AioOperatorNode]:
        """Every operation's module fetched, checked and instantiated, side by side in threads (as the worker for
        our own graphs does): the loop keeps answering /healthz during cold compiles. Waits for every node before
        raising the first failure, so no thread still uses the host when it closes."""
        graph = self.graph
        state = self._state_store()
        names = [name for name in graph.order if graph.nodes[name].module is not None]
        results = await asyncio.gather(*(self._load_node(host, name, state) for name in names), return_exceptions=True)
        operators = {
            name: result for name, result in zip(names, results, strict=True) if isinstance(result, AioOperatorNode)
        }
        for result in results:
            if isinstance(result, BaseException):
                for operator in operators.values():
                    operator.close()
                raise result
        return operators

    async def _load_node(self, host: EngineHost, name: str, state: StateStore) -> AioOperatorNode:
        config, graph_node = self.config, self.graph.nodes[name]
        assert graph_node.module is not None
        module = config.modules.get(graph_node.module)
        if module is None:
            raise ConfigError(f"module {graph_node.module!r} is not pinned in modules", where=f"operation {name}")
        data = await fetch_module(graph_node.module, module, Path(config.cache_dir) / "blobs")
        spec = AioNodeSpec(
            node=name,
            operation=graph_node.step.value,
            component=data,
            digest=module.digest,
            parameters=graph_node.parameters,
            memory_bytes=module.limits.memory_bytes,
            timeout_seconds=module.limits.timeout_seconds,
            fuel=module.limits.fuel,
        )
        return await asyncio.to_thread(_checked_load, host, spec, graph_node.module, state, self.aio_metrics)

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        http = serve(
            self.registry,
            self.readiness,
            "0.0.0.0",  # noqa: S104
            config.http_port,
            loop=loop,
            failure=lambda: self.health.failure,
        )
        operators: dict[str, AioOperatorNode] = {}
        try:
            with EngineHost(cache_dir=Path(config.cache_dir) / "compiled", metrics=self.metrics) as host:
                operators = await self._load(host)
                self.loaded = True
                for name in self.graph.sources:
                    port = config.sources[name]
                    settings = self._settings(port.endpoint, name, source=True)
                    if self._feeds_accumulate(name):
                        settings = replace(settings, receive_maximum=MAX_IN_FLIGHT)
                    self.sources[name] = MqttSource(settings, port.topic, capacity=DEFAULT_RECEIVE_MAXIMUM)
                for name in self.graph.sinks:
                    port = config.sinks[name]
                    self.sinks[name] = MqttSink(self._settings(port.endpoint, name), port.topic)
                sinks: dict[str, Sink] = dict(self.sinks)
                dead_letters: dict[tuple[str, str], Sink] = {}
                policy = config.error_policy
                if policy and policy.action is ErrorAction.DEAD_LETTER and policy.endpoint and policy.topic:
                    dead_letter = MqttSink(self._settings(policy.endpoint, "dlq-0"), policy.topic)
                    self.sinks[f"dead-letter:{policy.topic}"] = dead_letter
                    dead_letters[(policy.endpoint, policy.topic)] = dead_letter
                for sink in self.sinks.values():
                    sink.start()
                sources: dict[str, Source] = dict(self.sources)
                self.pipeline = Runtime(
                    self.graph,
                    error_policy=policy,
                    operators=operators,
                    sources=sources,
                    sinks=sinks,
                    dead_letters=dead_letters,
                    metrics=self.metrics,
                    time=FrontierTime(physical_clock=not config.event_time),
                    values=AIO_VALUES,
                )
                await run_graph(self.pipeline.run, self.pipeline.drain, stop, self.health)
        finally:
            for operator in operators.values():
                operator.close()
            for close in self._closers:
                close()
            for source in self.sources.values():
                source.close()
            for sink in self.sinks.values():
                await sink.close()
            await self.health.linger(stop)
            http.close()


def _checked_load(
    host: EngineHost, spec: AioNodeSpec, module: str, state: StateStore, aio_metrics: AioMetrics
) -> AioOperatorNode:
    """Compile (or load from cache), check against the AIO world of the operation, instantiate (in a thread)."""
    engine, component = host.compile(spec.compile_spec())
    report = check_component(spec.component, engine=engine, component=component)
    if report.aio is None or report.aio.operator(spec.operation) is None or not report.valid:
        problems = report.summary()
        raise ContractError(
            f"module {module!r} does not implement the AIO {spec.operation} operator"
            + (f": {problems}" if problems else "")
        )
    node = AioOperatorNode(host, spec, state=state, aio_metrics=aio_metrics)
    node.start()
    return node


async def from_dataflow(config: WorkerConfig) -> AioWorkerConfig:
    """The AIO worker config of a Dataflow whose ``spec.graph`` references a graph definition.

    The controller resolved the graph (``config.graph``): the definition's artifact and every module it names are
    pulled by those digests and verified, never by their tags, so a tag that moved after the controller rendered
    this config changes nothing until the controller renders it again.
    """
    graph, pins = config.spec.graph, config.graph
    assert graph is not None
    if pins is None:
        raise ConfigError("the graph is not resolved to digests: render this config with the controller", where="graph")
    if graph.definition is not None:
        definition = graph.definition
    else:
        if pins.artifact is None:
            raise ConfigError("the graph artifact is not pinned to a digest", where="graph.artifact")
        assert graph.artifact is not None
        access = Access(insecure=graph.artifact.insecure, ca_file=Path(pins.ca_file) if pins.ca_file else None)
        pulled = await pull_graph(pins.artifact, access=access, cache_dir=Path(config.cache_dir) / "blobs")
        definition = pulled.data.decode("utf-8")
    modules = {
        name: AioModule(
            reference=module.reference, digest=module.digest, insecure=module.insecure, ca_file=module.ca_file
        )
        for name, module in pins.modules.items()
    }
    return AioWorkerConfig(
        namespace=config.namespace,
        dataflow=config.dataflow,
        definition=definition,
        endpoints=config.spec.endpoints,
        modules=modules,
        sources=graph.sources,
        sinks=graph.sinks,
        parameters=graph.parameters,
        event_time=graph.event_time,
        state_store=graph.state_store,
        state_limits=graph.state_limits,
        limits=config.spec.limits,
        error_policy=config.spec.error_policy,
        endpoint_files=config.endpoint_files,
        http_port=config.http_port,
        cache_dir=config.cache_dir,
    )


def run_dataflow_graph(config: WorkerConfig) -> None:
    """``wasmflow worker`` for a Dataflow with ``spec.graph`` (called by ``worker.main``)."""
    run_worker(asyncio.run(from_dataflow(config)))


def run_worker(config: AioWorkerConfig) -> None:
    worker = AioWorker(config)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await worker.run(stop)

    asyncio.run(run())
    log.info("AIO graph worker stopped")
