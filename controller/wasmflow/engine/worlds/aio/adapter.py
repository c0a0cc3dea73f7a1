"""AIO's worlds, ``wasm-graph:processor@1.1.0`` and ``tinykube-graph:processor@1.0.0``: one node runs one operator
interface (``map``, ``filter``, ``branch``, ``accumulate``, ``delay``) of an AIO component.

The sandbox and the lifecycle are the ones our own operators get (``engine/node.py``: memory limit, epoch deadline
per call, fuel when asked, replacement with back-off after a trap, metrics, ``degraded``); this adapter links AIO's
host interfaces (``imports``) and speaks AIO's values (``codec``). One module often exports several operators (map
and filter of one sensor): each graph operation gets its own node, as each gets its own ``init``.

Which ``process`` variant the component implements (the value itself, or a ``result``) is read from the
component's exported types, so both published packages run. In the value variant an operator signals a failure by
trapping; in the result variant by ``err``. Either fails that one item, never the graph.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wasmtime import Engine, Store, WasmtimeError
from wasmtime.component import Component, Instance, Linker, ResultType

from wasmflow.contract.aio import AioOperator, Returns
from wasmflow.contract.aio_names import aio_interface
from wasmflow.contract.capabilities import split_name
from wasmflow.engine import codec, ffi, sandbox
from wasmflow.engine.guestlog import GuestLog
from wasmflow.engine.node import Node, NodeHost
from wasmflow.engine.worlds.aio.codec import (
    BufferTable,
    Lifter,
    error_text,
    lower_configuration,
    lower_data_model,
    lower_hlc,
    split_result,
)
from wasmflow.engine.worlds.aio.imports import AioHostContext, define_aio_imports
from wasmflow.engine.worlds.aio.metrics import AioMetrics
from wasmflow.engine.worlds.aio.model import AioMessage, DataModel, Hlc, Snapshot
from wasmflow.engine.worlds.aio.state import StateStore
from wasmflow.errors import EngineError


@dataclass(frozen=True)
class AioNodeSpec:
    """One operation of an AIO graph: the component, which operator interface, its parameters and limits."""

    node: str
    operation: str
    component: bytes
    digest: str = ""
    parameters: tuple[tuple[str, str], ...] = ()
    memory_bytes: int = 64 * 2**20
    timeout_seconds: float = 0.1
    fuel: int | None = None
    grants: frozenset[str] = frozenset()

    def content_digest(self) -> str:
        return self.digest or "sha256:" + hashlib.sha256(self.component).hexdigest()

    def compile_spec(self) -> AioNodeSpec:
        """What ``EngineHost.compile`` takes: the spec itself (kept for the callers that still ask for it)."""
        return self


def find_operator(engine: Engine, component: Component, operation: str) -> AioOperator | None:
    """The AIO interface of ``operation`` the component exports, with its ``process`` variant."""
    for name, extern in component.type.exports(engine).items():
        base, version = split_name(name)
        found = aio_interface(base, version)
        if found is None or found[1] != operation or version is None:
            continue
        process = extern.ty.exports(engine).get("process")  # type: ignore[union-attr]
        result = getattr(getattr(process, "ty", None), "result", None)
        returns = Returns.RESULT if isinstance(result, ResultType) else Returns.VALUE
        return AioOperator(operation, name, found[0], version, returns)
    return None


def _size(value: Any) -> int:
    if isinstance(value, AioMessage):
        return len(value.payload)
    if isinstance(value, Snapshot):
        return len(value.frame)
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, list):
        return sum(_size(item) for item in value)
    return 0  # a timestamp


class AioAdapter:
    """One node of an AIO graph: its operator interface found once, AIO's imports linked to the node's state store,
    metrics and log, ``init`` with the node's parameters, ``process`` bound for its operation."""

    def __init__(
        self,
        spec: AioNodeSpec,
        engine: Engine,
        component: Component,
        *,
        state: StateStore,
        metrics: AioMetrics | None,
    ) -> None:
        operator = find_operator(engine, component, spec.operation)
        if operator is None:
            raise EngineError(
                f"node {spec.node!r}: the module does not export an AIO {spec.operation} operator "
                "(tinykube-graph:processor or wasm-graph:processor)"
            )
        self.node = spec.node
        self.operation = spec.operation
        self.operator = operator
        self._spec = spec
        self._engine = engine
        self._component = component
        self._state = state
        self._metrics = metrics
        self._buffers = BufferTable()

    def linker(self, log: GuestLog) -> tuple[Linker, bool]:
        context = AioHostContext(self.node, log, self._buffers, self._metrics, self._state)

        def define(linker: Linker) -> None:
            try:
                define_aio_imports(self._engine, self._component, linker, context)
            except WasmtimeError as exc:
                raise EngineError(f"node {self.node!r}: cannot link the AIO host interfaces: {exc}") from exc

        return sandbox.node_linker(self._engine, self._component, log, self._spec.grants, define)

    def bind(self, store: Store, instance: Instance, fast: bool) -> AioCall:
        export = self.operator.export
        init = sandbox.export_func(store, instance, export, "init", self.node)
        process = sandbox.export_func(store, instance, export, "process", self.node)
        if not init(store, lower_configuration(self._spec.parameters)):
            raise EngineError(f"node {self.node!r}: init returned false (it refused its parameters; see its log)")
        call: Callable[..., Any] = ffi.GenericCall(store, process) if fast else functools.partial(process, store)
        bound = _CALLS[self.operation]
        return bound(store, call, Lifter(store, self._buffers), self.operator.returns is Returns.RESULT)

    def payload_size(self, inputs: Sequence[Any]) -> int:
        return sum(_size(value) for value in inputs)

    def reset(self) -> None:
        self._buffers.clear()


class AioCall:
    """``process`` of one instance for one operation: AIO values lowered (payloads as host buffers), the answer
    split from its ``result`` when the package has one (``err`` raises ``codec.ErrorResult``) and lifted."""

    def __init__(self, store: Store, process: Callable[..., Any], lifter: Lifter, returns_result: bool) -> None:
        self._store = store
        self._process = process
        self._lifter = lifter
        self._buffers = lifter.buffers
        self._returns_result = returns_result

    def _answer(self, value: Any) -> Any:
        if self._returns_result:
            ok, value = split_result(value)
            if not ok:
                raise codec.ErrorResult(error_text(value))
        return value

    def __call__(self, *inputs: Any) -> Any:
        raise NotImplementedError  # each operation's subclass

    def set_deadline(self, ticks: int) -> None:
        self._store.set_epoch_deadline(ticks)

    def close(self) -> None:
        return


class _Map(AioCall):
    def __call__(self, *inputs: Any) -> DataModel:
        (data,) = inputs
        return self._lifter.data_model(self._answer(self._process(lower_data_model(data, self._buffers))))


class _Filter(AioCall):
    def __call__(self, *inputs: Any) -> bool:
        (data,) = inputs
        return bool(self._answer(self._process(lower_data_model(data, self._buffers))))


class _Branch(AioCall):
    def __call__(self, *inputs: Any) -> bool:
        data, timestamp = inputs
        return bool(self._answer(self._process(lower_hlc(timestamp), lower_data_model(data, self._buffers))))


class _Accumulate(AioCall):
    def __call__(self, *inputs: Any) -> DataModel:
        staged, items = inputs
        buffers = self._buffers
        value = self._process(lower_data_model(staged, buffers), [lower_data_model(i, buffers) for i in items])
        return self._lifter.data_model(self._answer(value))


class _Delay(AioCall):
    def __call__(self, *inputs: Any) -> Hlc:
        data, timestamp = inputs
        return self._lifter.hlc(
            self._answer(self._process(lower_data_model(data, self._buffers), lower_hlc(timestamp)))
        )


_CALLS: dict[str, type[AioCall]] = {
    "map": _Map,
    "filter": _Filter,
    "branch": _Branch,
    "accumulate": _Accumulate,
    "delay": _Delay,
}


def aio_node(host: NodeHost, spec: AioNodeSpec, *, state: StateStore, metrics: AioMetrics | None) -> Node:
    """An AIO node, compiled (or from the cache) and adapted, not yet started (``host.start(node)`` starts it)."""
    engine, component = host.compile(spec.compile_spec())
    return Node(host, spec, AioAdapter(spec, engine, component, state=state, metrics=metrics), engine, component)
