"""AIO operators (componentize-py against AIO's WIT) in the engine: both process variants, host buffers, the state
store and metrics imports, and the checker's verdict."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.components.build import cache_dir
from wasmflow.contract.aio import Returns
from wasmflow.contract.check import check_component
from wasmflow.engine.host import EngineHost
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.engine.node import Backoff, Node
from wasmflow.engine.worlds.aio.adapter import AioNodeSpec, aio_node
from wasmflow.engine.worlds.aio.metrics import AioMetrics
from wasmflow.engine.worlds.aio.model import AioMessage, Hlc
from wasmflow.engine.worlds.aio.state import MemoryStateStore
from wasmflow.errors import OperatorFailure

Bytes = Callable[[str], bytes]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def aio_host(registry: CollectorRegistry) -> Iterator[EngineHost]:
    with EngineHost(cache_dir=cache_dir().parent / "compiled", metrics=EngineMetrics(registry)) as host:
        yield host


def message(body: dict[str, object] | str, ms: int = 1000) -> AioMessage:
    payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return AioMessage(payload, b"plant/t1", Hlc.from_ms(ms, 0, "source"))


def node(host: EngineHost, component_bytes: Bytes, name: str, operation: str, **fields: object) -> Node:
    spec = AioNodeSpec(name, operation, component_bytes(name), timeout_seconds=2.0, **fields)  # type: ignore[arg-type]
    return host.start(aio_node(host, spec, state=MemoryStateStore(), metrics=None))


@pytest.mark.parametrize(
    ("name", "world", "returns"),
    [
        ("aio_f2c_map", "tinykube-graph:processor/map-impl@1.0.0", Returns.VALUE),
        ("aio_range_filter", "wasm-graph:processor/filter-impl@1.1.0", Returns.RESULT),
        ("aio_window_delay", "tinykube-graph:processor/delay-impl@1.0.0", Returns.VALUE),
    ],
)
def test_the_checker_reports_the_aio_world_and_process_variant(
    component_bytes: Bytes, name: str, world: str, returns: Returns
) -> None:
    report = check_component(component_bytes(name))
    assert report.valid, report.problems
    assert report.aio is not None
    assert report.world == world
    assert [o.returns for o in report.aio.operators] == [returns]


def test_a_value_variant_map_reads_host_buffers_and_returns_bytes(aio_host: EngineHost, component_bytes: Bytes) -> None:
    f2c = node(aio_host, component_bytes, "aio_f2c_map", "map")
    out = f2c.map(message({"value": 212, "unit": "F"}))
    assert isinstance(out, AioMessage)
    assert json.loads(out.payload) == {"value": 100.0, "unit": "C"}
    assert out.topic == b"plant/t1" and out.timestamp == Hlc(1, 0, 0, "source")
    f2c.close()


def test_a_value_variant_failure_traps_that_item_only(aio_host: EngineHost, component_bytes: Bytes) -> None:
    f2c = node(aio_host, component_bytes, "aio_f2c_map", "map")
    with pytest.raises(OperatorFailure) as caught:
        f2c.map(message("not json"))
    assert caught.value.kind == "trap"
    out = f2c.map(message({"value": 32, "unit": "F"}))  # a fresh instance answers
    assert isinstance(out, AioMessage) and json.loads(out.payload)["value"] == 0.0
    f2c.close()


def test_an_aio_node_that_keeps_trapping_is_degraded_with_its_last_error_until_an_item_succeeds(
    aio_host: EngineHost, registry: CollectorRegistry, component_bytes: Bytes
) -> None:
    # The lifecycle our own nodes have (engine/node.py), now the AIO nodes' too: back-off, degraded, last error.
    aio_host.backoff = Backoff(free=1, initial=1e-9, maximum=1e-9)  # degraded from the 2nd trap, retried at once
    f2c = node(aio_host, component_bytes, "aio_f2c_map", "map")
    for _ in range(2):
        with pytest.raises(OperatorFailure):
            f2c.map(message("not json"))
    assert f2c.degraded
    assert f2c.last_error is not None and f2c.last_error.startswith("trap: ")
    assert registry.get_sample_value("wasmflow_node_degraded", {"node": "aio_f2c_map"}) == 1
    assert isinstance(f2c.map(message({"value": 32, "unit": "F"})), AioMessage)
    assert not f2c.degraded and f2c.last_error is None
    assert registry.get_sample_value("wasmflow_node_degraded", {"node": "aio_f2c_map"}) == 0
    f2c.close()


def test_a_result_variant_error_is_an_operator_error(aio_host: EngineHost, component_bytes: Bytes) -> None:
    bounded = node(aio_host, component_bytes, "aio_range_filter", "filter", parameters=(("upper", "50"),))
    assert bounded.filter(message({"value": 20})) is True
    assert bounded.filter(message({"value": 80})) is False
    with pytest.raises(OperatorFailure) as caught:
        bounded.filter(message("{}"))
    assert caught.value.kind == "error" and "numeric 'value'" in caught.value.message
    bounded.close()


def test_a_delay_moves_an_item_to_its_window_end(aio_host: EngineHost, component_bytes: Bytes) -> None:
    delay = node(aio_host, component_bytes, "aio_window_delay", "delay", parameters=(("windowMs", "5000"),))
    assert delay.delay(message({"value": 1}, ms=7250), Hlc.from_ms(7250, 3, "source")) == Hlc(10, 0, 0, "source")
    delay.close()


def test_the_state_store_is_shared_and_metrics_reach_the_registry(
    aio_host: EngineHost, registry: CollectorRegistry, component_bytes: Bytes
) -> None:
    state = MemoryStateStore()
    metrics = AioMetrics(registry)
    spec = AioNodeSpec("count", "map", component_bytes("aio_counting_map"), timeout_seconds=2.0)
    first = aio_host.start(aio_node(aio_host, spec, state=state, metrics=metrics))
    second = aio_host.start(
        aio_node(
            aio_host, AioNodeSpec("count2", "map", spec.component, timeout_seconds=2.0), state=state, metrics=metrics
        )
    )
    seen = []
    for counter in (first, second, first):
        out = counter.map(message({"sensor": "t1", "value": 21.5}))
        assert isinstance(out, AioMessage)
        seen.append(json.loads(out.payload)["seen"])
    assert seen == [1, 2, 3]  # two instances, one store
    assert state.get(b"seen/t1")[0] == b"3"
    text = generate_latest(registry).decode()
    assert 'wasmflow_aio_messages_total{node="count",sensor="t1"} 2.0' in text
    assert 'wasmflow_aio_messages_total{node="count2",sensor="t1"} 1.0' in text
    assert 'wasmflow_aio_value_sum{node="count"} 43.0' in text
    first.close()
    second.close()


def test_an_import_wasmflow_does_not_serve_links_and_each_call_fails_naming_it(
    aio_host: EngineHost, component_bytes: Bytes
) -> None:
    report = check_component(component_bytes("aio_invoker_map"))
    classes = {i.name: i.kind.value for i in report.imports}
    assert classes["tinykube-graph:processor/command-invoker@1.0.0"] == "denied-unless-granted"
    invoker = node(aio_host, component_bytes, "aio_invoker_map", "map")
    assert isinstance(invoker.map(message("hello")), AioMessage)
    with pytest.raises(OperatorFailure) as caught:
        invoker.map(message("invoke"))
    assert caught.value.kind == "trap"
    assert "tinykube-graph:processor/command-invoker@1.0.0 [constructor]command-request-builder" in caught.value.message
    assert isinstance(invoker.map(message("hello again")), AioMessage)  # a fresh instance goes on
    invoker.close()


def test_wasmtime_pys_own_conversions_give_the_same_answers(component_bytes: Bytes) -> None:
    """The fallback when the fast codec's layouts do not hold (a wasmtime-py upgrade): same values, both variants."""
    with EngineHost(cache_dir=cache_dir().parent / "compiled", fast_codec=False) as host:
        f2c = node(host, component_bytes, "aio_f2c_map", "map")
        out = f2c.map(message({"value": 212, "unit": "F"}))
        assert isinstance(out, AioMessage) and json.loads(out.payload) == {"value": 100.0, "unit": "C"}
        bounded = node(host, component_bytes, "aio_range_filter", "filter", parameters=(("upper", "50"),))
        assert (bounded.filter(message({"value": 20})), bounded.filter(message({"value": 80}))) == (True, False)
        with pytest.raises(OperatorFailure, match="numeric 'value'"):
            bounded.filter(message("{}"))
        f2c.close()
        bounded.close()
