"""The worker process: read the rendered config, load the pinned modules, connect MQTT, run the graph, serve HTTP.

Readiness means every module is loaded and every source and sink is connected; liveness that the loop answers
and the graph has not failed. SIGTERM stops the sources, lets what is in flight reach its sinks (acknowledging
it), then exits 0; a node failing for good makes the worker exit 1, loudly (worker/lifecycle.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter

from wasmflow.api.dataflow import ErrorAction, Node, NodeType
from wasmflow.api.frontends.dataflow import MAX_IN_FLIGHT, dataflow_graph, held_by_windows
from wasmflow.api.graph import Graph
from wasmflow.api.workerconfig import AioWorkerConfig, WorkerConfig
from wasmflow.connectors.mqtt import MqttSettings, MqttSink, MqttSource
from wasmflow.connectors.mqtt_settings import DEFAULT_RECEIVE_MAXIMUM
from wasmflow.engine.host import EngineHost, OperatorNode, OperatorSpec
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.engine.ports import Sink, Source
from wasmflow.engine.runtime import QUEUE_SIZE, Runtime
from wasmflow.errors import ConfigError, ContractError
from wasmflow.worker.endpoints import endpoint_settings
from wasmflow.worker.http import Readiness, serve
from wasmflow.worker.lifecycle import Health, run_graph
from wasmflow.worker.modules import fetch_module

log = logging.getLogger("wasmflow.worker")


#: Either config a worker is given; pydantic tells them apart (both forbid unknown fields, and an AIO graph's has
#: ``kind: aio-graph``), so no caller sniffs the text.
_CONFIGS: TypeAdapter[WorkerConfig | AioWorkerConfig] = TypeAdapter(WorkerConfig | AioWorkerConfig)


def load_config(path: Path) -> WorkerConfig | AioWorkerConfig:
    try:
        return _CONFIGS.validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the worker config: {exc.strerror}", where=str(path)) from exc
    except ValueError as exc:
        raise ConfigError(f"invalid worker config: {exc}", where=str(path)) from exc


def _under(root: Path, path: str | None) -> str | None:
    return None if path is None else str(root / path.lstrip("/"))


def relocate(config: WorkerConfig, root: Path) -> WorkerConfig:
    """The config with every file and folder it names (cache, pull secrets, registry CA, module files, endpoint
    secrets) read under ``root``: a pod's config run outside the pod, its volumes laid out under ``root`` as the
    kubelet would mount them at ``/``."""
    modules = {
        name: module.model_copy(
            update={
                "pull_secret_file": _under(root, module.pull_secret_file),
                "ca_file": _under(root, module.ca_file),
                "path": _under(root, module.path),
            }
        )
        for name, module in config.modules.items()
    }
    graph = config.graph
    if graph is not None:
        graph_modules = {
            name: module.model_copy(update={"ca_file": _under(root, module.ca_file)})
            for name, module in graph.modules.items()
        }
        graph = graph.model_copy(update={"ca_file": _under(root, graph.ca_file), "modules": graph_modules})
    files = {
        name: endpoint.model_copy(update={k: _under(root, v) for k, v in endpoint.model_dump().items()})
        for name, endpoint in config.endpoint_files.items()
    }
    cache_dir = _under(root, config.cache_dir)
    assert cache_dir is not None
    return config.model_copy(
        update={"modules": modules, "graph": graph, "endpoint_files": files, "cache_dir": cache_dir}
    )


def _settings(config: WorkerConfig, endpoint: str, role: str, *, source: bool = False) -> MqttSettings:
    return endpoint_settings(
        config.spec.endpoints[endpoint],
        config.endpoint_files.get(endpoint),
        config.namespace,
        config.dataflow,
        role,
        max_message_size=config.spec.limits.max_message_bytes if source else None,
    )


def source_receive_maximum(graph: Graph, source: str) -> int:
    """The Receive Maximum a QoS 1 source advertises: room for what the windows downstream hold unacknowledged.

    A count window of N holds N inputs until it closes (windows in series multiply), so the source's budget is
    that plus a queue's worth of slack; a duration window holds whatever its duration brings, so the budget is
    MQTT's largest. Without windows: the default (64). The hand-over to the pipeline stays at the default size
    whatever the budget (``MqttSource(capacity=...)``): a larger budget costs no more messages in memory.
    """
    held, _ = held_by_windows(graph, source)
    if held == 1:
        return DEFAULT_RECEIVE_MAXIMUM
    if held is None:
        return MAX_IN_FLIGHT
    return min(MAX_IN_FLIGHT, max(DEFAULT_RECEIVE_MAXIMUM, held + QUEUE_SIZE))


def _checked_load(host: EngineHost, spec: OperatorSpec, module: str, strict: bool) -> OperatorNode:
    """Compile (or load from cache), check against the contract, instantiate: ContractError names the module."""
    report = host.check(spec, strict=strict)
    if not report.valid:
        raise ContractError(f"module {module!r} does not satisfy the contract: {report.summary()}")
    return host.load(spec)


class Worker:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        self.metrics = EngineMetrics.create(self.registry)
        self.loaded = False
        self.sources: dict[str, MqttSource] = {}
        self.sinks: dict[str, MqttSink] = {}
        self.pipeline: Runtime | None = None
        self.health = Health()

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

    async def _load(self, host: EngineHost) -> dict[str, OperatorNode]:
        """Every operator node loaded, the nodes side by side in threads: reading, verifying, loading compiled code
        and instantiating mostly run outside the GIL, and the loop keeps answering /healthz meanwhile (a cold
        compile takes seconds per component). Waits for every node before raising the first failure, so no thread
        still uses the host when it closes."""
        nodes = [node for node in self.config.spec.nodes if node.type.is_operator]
        results = await asyncio.gather(*(self._load_node(host, node) for node in nodes), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return {
            node.name: result for node, result in zip(nodes, results, strict=True) if isinstance(result, OperatorNode)
        }

    async def _load_node(self, host: EngineHost, node: Node) -> OperatorNode:
        assert node.module is not None
        pinned = self.config.modules[node.module]
        data = await fetch_module(node.module, pinned, Path(self.config.cache_dir) / "blobs")
        spec = OperatorSpec(
            node=node.name,
            kind=pinned.operator,
            component=data,
            digest=pinned.digest,
            memory_bytes=pinned.limits.memory_bytes,
            timeout_seconds=pinned.limits.timeout_seconds,
            fuel=pinned.limits.fuel,
            grants=frozenset(str(c) for c in pinned.capabilities),
            configuration=tuple(node.configuration.items()),
        )
        return await asyncio.to_thread(_checked_load, host, spec, node.module, pinned.strict)

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        graph = dataflow_graph(config.spec)
        loop = asyncio.get_running_loop()
        http = serve(
            self.registry,
            self.readiness,
            "0.0.0.0",  # noqa: S104
            config.http_port,
            loop=loop,
            failure=lambda: self.health.failure,
        )
        try:
            with EngineHost(cache_dir=Path(config.cache_dir) / "compiled", metrics=self.metrics) as host:
                operators = await self._load(host)
                self.loaded = True
                for node in config.spec.nodes:
                    if node.type is NodeType.SOURCE:
                        assert node.endpoint and node.topic
                        settings = replace(
                            _settings(config, node.endpoint, node.name, source=True),
                            receive_maximum=source_receive_maximum(graph, node.name),
                        )
                        self.sources[node.name] = MqttSource(
                            settings, node.topic, capacity=min(settings.receive_maximum, DEFAULT_RECEIVE_MAXIMUM)
                        )
                    elif node.type is NodeType.SINK:
                        assert node.endpoint and node.topic
                        self.sinks[node.name] = MqttSink(_settings(config, node.endpoint, node.name), node.topic)
                dead_letters: dict[tuple[str, str], Sink] = {}
                for policy in [config.spec.error_policy, *(n.error_policy for n in config.spec.nodes)]:
                    if policy and policy.action is ErrorAction.DEAD_LETTER and policy.endpoint and policy.topic:
                        key = (policy.endpoint, policy.topic)
                        if key not in dead_letters:
                            sink = MqttSink(
                                _settings(config, policy.endpoint, f"dlq-{len(dead_letters)}"), policy.topic
                            )
                            self.sinks[f"dead-letter:{policy.topic}"] = sink
                            dead_letters[key] = sink
                for sink in self.sinks.values():
                    sink.start()
                sources: dict[str, Source] = dict(self.sources)
                sinks: dict[str, Sink] = {name: self.sinks[name] for name in graph.sinks}
                self.pipeline = Runtime(
                    graph,
                    error_policy=config.spec.error_policy,
                    operators=operators,
                    sources=sources,
                    sinks=sinks,
                    dead_letters=dead_letters,
                    metrics=self.metrics,
                )
                await run_graph(self.pipeline.run, self.pipeline.drain, stop, self.health)
                for operator in operators.values():
                    operator.close()
        finally:
            for source in self.sources.values():
                source.close()
            for sink in self.sinks.values():
                await sink.close()
            await self.health.linger(stop)
            http.close()


def main(config_path: Path, *, root: Path | None = None, http_port: int | None = None) -> None:
    loaded = load_config(config_path)
    if http_port is not None:
        loaded = loaded.model_copy(update={"http_port": http_port})
    if isinstance(loaded, AioWorkerConfig):
        from wasmflow.worker.aio import run_worker  # noqa: PLC0415 - the AIO graph worker (worker/aio.py)

        run_worker(loaded)
        return
    config = loaded if root is None else relocate(loaded, root)
    if config.spec.graph is not None:
        from wasmflow.worker.aio import run_dataflow_graph  # noqa: PLC0415 - the AIO graph worker (worker/aio.py)

        run_dataflow_graph(config)
        return

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Worker(config).run(stop)

    asyncio.run(run())
    log.info("worker stopped")
