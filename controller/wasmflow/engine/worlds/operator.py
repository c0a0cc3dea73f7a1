"""Our world, ``wasmflow:operator@0.1.x``: ``lifecycle.init`` plus one of ``map``, ``filter``, ``branch``,
``accumulate``, each ``process`` taking and returning the contract's ``message`` record (``engine/codec.py``).

The only import of our own is ``logging`` (``sandbox.build_linker``); everything else is WASI, denied unless granted.
"""

from __future__ import annotations

from collections.abc import Sequence

from wasmtime import Engine, Store
from wasmtime.component import Component, Instance, Linker

from wasmflow.api.kinds import OperatorKind
from wasmflow.contract.capabilities import split_name
from wasmflow.engine import codec, sandbox
from wasmflow.engine.guestlog import GuestLog
from wasmflow.engine.message import Message
from wasmflow.errors import EngineError

CONTRACT_PACKAGE = "wasmflow:operator"
#: Contract versions the host accepts (operator.wit: same major.minor).
CONTRACT_VERSION_PREFIX = "0.1."


def export_name(engine: Engine, component: Component, interface: str) -> str | None:
    """The exact export name of ``wasmflow:operator/<interface>@0.1.x`` in this component."""
    wanted = f"{CONTRACT_PACKAGE}/{interface}"
    for name in component.type.exports(engine):
        base, version = split_name(name)
        if base == wanted and version is not None and version.startswith(CONTRACT_VERSION_PREFIX):
            return name
    return None


class OperatorAdapter:
    """One node of our world: its exports found once, ``init`` with the node's configuration, ``process`` bound
    with the message codec (``codec.FastProcess`` unless the fast path is off)."""

    def __init__(
        self,
        node: str,
        kind: OperatorKind,
        engine: Engine,
        component: Component,
        *,
        grants: frozenset[str],
        configuration: tuple[tuple[str, str], ...],
    ) -> None:
        self.node = node
        self.kind = kind
        self.operation = kind.value
        self._engine = engine
        self._component = component
        self._grants = grants
        self._configuration = configuration
        lifecycle = export_name(engine, component, "lifecycle")
        operator = export_name(engine, component, kind.value)
        if lifecycle is None or operator is None:
            missing = [n for n, v in (("lifecycle", lifecycle), (kind.value, operator)) if v is None]
            raise EngineError(
                f"node {node!r}: the component does not export "
                + ", ".join(f"{CONTRACT_PACKAGE}/{m}@0.1.x" for m in missing)
            )
        #: The exact export names (``wasmflow:operator/lifecycle@0.1.x``, ``wasmflow:operator/<kind>@0.1.x``).
        self.lifecycle_export = lifecycle
        self.operator_export = operator
        self._returns_message = kind in (OperatorKind.MAP, OperatorKind.ACCUMULATE)

    def linker(self, log: GuestLog) -> tuple[Linker, bool]:
        return sandbox.node_linker(self._engine, self._component, log, self._grants)

    def bind(self, store: Store, instance: Instance, fast: bool) -> codec.ProcessCall:
        init = sandbox.export_func(store, instance, self.lifecycle_export, "init", self.node)
        process = sandbox.export_func(store, instance, self.operator_export, "process", self.node)
        error = codec.call_init(store, init, self.node, self._configuration)
        if error is not None:
            raise EngineError(f"node {self.node!r}: init refused the configuration: {error}")
        return codec.bind_process(store, process, self._returns_message, fast=fast)

    def payload_size(self, inputs: Sequence[Message]) -> int:
        return len(inputs[0].payload) if len(inputs) == 1 else sum(len(m.payload) for m in inputs)

    def reset(self) -> None:
        return
