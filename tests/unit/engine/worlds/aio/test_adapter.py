"""The AIO world's adapter (engine/worlds/aio/adapter.py) on wasm-tools dummies of AIO's packages (right types, every
function traps): which operator a module serves, and what the node refuses before any item runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wasmflow.contract.aio import Returns
from wasmflow.engine.host import EngineHost
from wasmflow.engine.worlds.aio.adapter import AioAdapter, AioNodeSpec, aio_node, find_operator
from wasmflow.engine.worlds.aio.model import AioMessage, Hlc, Snapshot
from wasmflow.engine.worlds.aio.state import MemoryStateStore
from wasmflow.errors import EngineError

Bytes = Callable[[str], bytes]


def test_the_operator_export_and_its_process_variant_are_read_from_the_component(
    host: EngineHost, component_bytes: Bytes
) -> None:
    engine, component = host.compile(AioNodeSpec("f", "filter", component_bytes("aio_dummy_filter")))
    operator = find_operator(engine, component, "filter")
    assert operator is not None
    assert (operator.export, operator.returns) == ("wasm-graph:processor/filter@1.1.0", Returns.RESULT)
    assert find_operator(engine, component, "map") is None


def test_a_node_for_an_operation_the_module_does_not_export_is_refused_naming_both(
    host: EngineHost, component_bytes: Bytes
) -> None:
    spec = AioNodeSpec("to-celsius", "map", component_bytes("aio_dummy_filter"))
    with pytest.raises(EngineError, match=r"'to-celsius'.*does not export an AIO map operator"):
        aio_node(host, spec, state=MemoryStateStore(), metrics=None)


def test_a_module_whose_init_traps_fails_its_start_naming_the_node(host: EngineHost, component_bytes: Bytes) -> None:
    node = aio_node(
        host, AioNodeSpec("keep", "filter", component_bytes("aio_dummy_filter")), state=MemoryStateStore(), metrics=None
    )
    with pytest.raises(EngineError, match=r"'keep': cannot start the operator \(trap\)"):
        host.start(node)


def test_the_payload_an_item_carries_is_what_the_deadline_allows_for(host: EngineHost, component_bytes: Bytes) -> None:
    spec = AioNodeSpec("f", "filter", component_bytes("aio_dummy_filter"))
    engine, component = host.compile(spec)
    adapter = AioAdapter(spec, engine, component, state=MemoryStateStore(), metrics=None)
    stamp = Hlc(1, 0)
    message = AioMessage(b"x" * 100, b"topic", stamp)
    frame = Snapshot(stamp, "rgb", 2, 2, b"y" * 12)
    assert adapter.payload_size((message,)) == 100
    assert adapter.payload_size((message, stamp)) == 100  # branch and delay: the timestamp carries no payload
    assert adapter.payload_size((b"raw", [message, frame])) == 3 + 100 + 12  # accumulate: staged and the batch
