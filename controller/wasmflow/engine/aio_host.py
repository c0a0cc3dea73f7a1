"""AIO operator instances: one node of an AIO graph, running one operator interface of an AIO component.

The sandbox is the one our own operators get (``sandbox``: WASI denied unless granted, memory limit, epoch deadline
per call, fuel when asked, re-instantiation after a trap); on top, the node links AIO's host interfaces
(``aio_imports``) and speaks AIO's values (``aio_codec``). One module often exports several operators (map and
filter of one sensor): each graph operation gets its own instance, as each gets its own ``init``.

Which ``process`` variant the component implements (the value itself, or a ``result``) is read from the
component's exported types, so both published packages run. In the value variant an operator signals a failure by
trapping; in the result variant by ``err``. Either fails that one item, never the graph.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from wasmtime import Store, WasmtimeError
from wasmtime.component import Instance, Linker, ResultType

from wasmflow.api.kinds import OperatorKind
from wasmflow.contract.aio import AioOperator, Returns
from wasmflow.contract.aio_names import aio_interface
from wasmflow.contract.capabilities import split_name
from wasmflow.engine import aio_codec, codec, sandbox
from wasmflow.engine.aio_codec import BufferTable, Lifter
from wasmflow.engine.aio_imports import AioHostContext, DeniedImportError, define_aio_imports
from wasmflow.engine.aio_metrics import AioMetrics
from wasmflow.engine.aio_model import DataModel, Hlc
from wasmflow.engine.aio_state import StateStore
from wasmflow.engine.guestlog import GuestLog
from wasmflow.engine.host import EngineHost, OperatorSpec
from wasmflow.errors import EngineError, OperatorFailure

log = logging.getLogger(__name__)

T = TypeVar("T")


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

    def compile_spec(self) -> OperatorSpec:
        """What ``EngineHost.compile`` needs (it reads the bytes, the digest and whether fuel is on; not the kind)."""
        return OperatorSpec(
            node=self.node, kind=OperatorKind.MAP, component=self.component, digest=self.digest, fuel=self.fuel
        )


def find_operator(engine: Any, component: Any, operation: str) -> AioOperator | None:
    """The AIO interface of ``operation`` the component exports, with its ``process`` variant."""
    for name, extern in component.type.exports(engine).items():
        base, version = split_name(name)
        found = aio_interface(base, version)
        if found is None or found[1] != operation or version is None:
            continue
        process = extern.ty.exports(engine).get("process")
        result = getattr(getattr(process, "ty", None), "result", None)
        returns = Returns.RESULT if isinstance(result, ResultType) else Returns.VALUE
        return AioOperator(operation, name, found[0], version, returns)
    return None


@dataclass
class _Live:
    store: Store
    instance: Instance
    process: Callable[..., Any]
    lifter: Lifter


class AioOperatorNode:
    """One node of an AIO graph (not thread-safe: one caller at a time)."""

    def __init__(
        self, host: EngineHost, spec: AioNodeSpec, *, state: StateStore, aio_metrics: AioMetrics | None
    ) -> None:
        self.host = host
        self.spec = spec
        self.node = spec.node
        self._engine, self._component = host.compile(spec.compile_spec())
        operator = find_operator(self._engine, self._component, spec.operation)
        if operator is None:
            raise EngineError(
                f"node {spec.node!r}: the module does not export an AIO {spec.operation} operator "
                "(tinykube-graph:processor or wasm-graph:processor)"
            )
        self.operator = operator
        metrics = host.metrics
        self._log = GuestLog(
            spec.node, on_dropped=(metrics.guest_log_dropped.labels(spec.node).inc if metrics is not None else None)
        )
        self._buffers = BufferTable()
        context = AioHostContext(spec.node, self._log, self._buffers, aio_metrics, state)

        def define(linker: Linker) -> None:
            try:
                define_aio_imports(self._engine, self._component, linker, context)
            except WasmtimeError as exc:
                raise EngineError(f"node {spec.node!r}: cannot link the AIO host interfaces: {exc}") from exc

        self._linker, self._http = sandbox.node_linker(self._engine, self._component, self._log, spec.grants, define)
        self._limits = sandbox.StoreLimits.for_component(spec.memory_bytes, spec.component)
        self._deadline = host.deadline_ticks(spec.timeout_seconds)
        self._init_deadline = host.deadline_ticks(max(host.init_timeout_seconds, spec.timeout_seconds))
        self._tagged_result: bool | None = None
        #: wasmtime-py's own conversions when the layouts the fast codec relies on do not hold (codec.py).
        self._fast = host.fast_codec and codec.FAST_PATH
        self._live: _Live | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._closed = False
        if metrics is not None:
            self._m_failures = {
                k: metrics.failures.labels(spec.node, k) for k in ("trap", "timeout", "memory", "error")
            }
            self._m_seconds = metrics.process_seconds.labels(spec.node)
            self._m_instantiations = metrics.instantiations.labels(spec.node)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._live = self._instantiate()

    def _instantiate(self) -> _Live:
        spec = self.spec
        self._buffers.clear()
        store = sandbox.init_store(
            self._engine,
            self._limits,
            spec.grants,
            self._log,
            http=self._http,
            init_deadline=self._init_deadline,
            fuel=spec.fuel is not None,
        )
        self._log.begin_call()
        try:
            instance = self._linker.instantiate(store, self._component)
            init = sandbox.export_func(store, instance, self.operator.export, "init", spec.node)
            process = sandbox.export_func(store, instance, self.operator.export, "process", spec.node)
            accepted = init(store, aio_codec.lower_configuration(spec.parameters))
        except DeniedImportError as exc:
            store.close()
            raise EngineError(f"node {spec.node!r}: init called an import wasmflow does not serve: {exc}") from exc
        except WasmtimeError as exc:
            store.close()
            kind, text = sandbox.classify_failure(exc, self._log.recent)
            raise EngineError(f"node {spec.node!r}: cannot start the AIO operator ({kind}): {text}") from exc
        except BaseException:
            store.close()
            raise
        if not accepted:
            store.close()
            raise EngineError(f"node {spec.node!r}: init returned false (it refused its parameters; see its log)")
        if self._fast:
            call: Callable[..., Any] = aio_codec.BoundProcess(store, process)
            self._tagged_result = True  # lift_c tags every variant and result
        else:
            call = functools.partial(process, store)
            result = process.type(store).result
            self._tagged_result = isinstance(result, ResultType) and bool(result._tagged())
        if self.host.metrics is not None:
            self._m_instantiations.inc()
        return _Live(store, instance, call, Lifter(store, self._buffers))

    def close(self) -> None:
        self._closed = True
        self._discard()

    def _discard(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.store.close()
        self._buffers.clear()
        self._log.flush()

    # -- calls -------------------------------------------------------------------------------------------------

    def map(self, data: DataModel) -> DataModel:
        return self._call(lambda b: (aio_codec.lower_data_model(data, b),), lambda live, v: live.lifter.data_model(v))

    def filter(self, data: DataModel) -> bool:
        return self._call(lambda b: (aio_codec.lower_data_model(data, b),), lambda _live, v: bool(v))

    def branch(self, data: DataModel, timestamp: Hlc) -> bool:
        return self._call(
            lambda b: (aio_codec.lower_hlc(timestamp), aio_codec.lower_data_model(data, b)), lambda _live, v: bool(v)
        )

    def accumulate(self, staged: DataModel, items: list[DataModel]) -> DataModel:
        return self._call(
            lambda b: (aio_codec.lower_data_model(staged, b), [aio_codec.lower_data_model(i, b) for i in items]),
            lambda live, v: live.lifter.data_model(v),
        )

    def delay(self, data: DataModel, timestamp: Hlc) -> Hlc:
        return self._call(
            lambda b: (aio_codec.lower_data_model(data, b), aio_codec.lower_hlc(timestamp)),
            lambda live, v: live.lifter.hlc(v),
        )

    def _call(self, lower: Callable[[BufferTable], tuple[Any, ...]], lift: Callable[[_Live, Any], T]) -> T:
        if self._closed:
            raise EngineError(f"node {self.node!r} is closed")
        live = self._live or self._replace()
        store = live.store
        store.set_epoch_deadline(self._deadline)
        if self.spec.fuel is not None:
            store.set_fuel(self.spec.fuel)
        self._log.begin_call()
        started = time.perf_counter()
        try:
            value = live.process(*lower(self._buffers))
            ok = True
            if self.operator.returns is Returns.RESULT:
                ok, value = aio_codec.split_result(value, bool(self._tagged_result))
            if not ok:
                raise self._fail("error", aio_codec.error_text(value), discard=False)
            result = lift(live, value)
        except DeniedImportError as exc:
            raise self._fail("trap", str(exc), discard=True) from exc
        except codec.PayloadTooLarge as exc:  # buffer.read of a payload wasmtime cannot pass (aio_imports.py)
            raise self._fail("memory", exc.text, discard=True) from exc
        except WasmtimeError as exc:
            kind, text = sandbox.classify_failure(exc, self._log.recent)
            raise self._fail(kind, text, discard=True) from exc
        finally:
            if self.host.metrics is not None:
                self._m_seconds.observe(time.perf_counter() - started)
        self._failures = 0
        return result

    def _fail(self, kind: str, text: str, *, discard: bool) -> OperatorFailure:
        if self.host.metrics is not None:
            self._m_failures[kind].inc()
        if discard:
            self._discard()
            self._failures += 1
            self._retry_at = time.monotonic() + self.host.backoff.delay(self._failures)
        return OperatorFailure(self.node, kind, text)

    def _replace(self) -> _Live:
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise self._fail(
                "trap", f"instance unavailable for {wait:.2f}s after {self._failures} failures", discard=False
            )
        try:
            self._live = self._instantiate()
        except EngineError as exc:
            raise self._fail("trap", f"cannot replace the failed instance: {exc}", discard=True) from exc
        return self._live
