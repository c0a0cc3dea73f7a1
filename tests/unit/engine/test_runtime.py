"""The one runtime (engine/runtime.py), driven with in-process sources and sinks and real operators: what every
graph gets whatever its front-end and time (dead-letter, the sink window, the early window close), and what only
graphs with timestamps pay for (progress markers)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable

from tests.components.engine import wat
from tests.unit.engine.ports import BudgetSource, GatedSink, ListSink, ListSource
from wasmflow.api.dataflow import DataflowSpec, ErrorPolicy
from wasmflow.api.frontends.aio import definition_graph, parse_graph
from wasmflow.api.frontends.dataflow import dataflow_graph
from wasmflow.api.kinds import OperatorKind
from wasmflow.engine.aio_host import AioNodeSpec, AioOperatorNode
from wasmflow.engine.aio_state import MemoryStateStore
from wasmflow.engine.host import EngineHost, OperatorNode, OperatorSpec
from wasmflow.engine.message import Message
from wasmflow.engine.runtime import Item, Progress, Runtime
from wasmflow.engine.time import END, FrontierTime
from wasmflow.engine.values import AIO_VALUES

ENDPOINTS = {"local": {"mqtt": {"url": "mqtt://127.0.0.1:1883"}}}
DEAD_LETTER = ErrorPolicy.model_validate({"action": "deadLetter", "endpoint": "local", "topic": "failed"})


def dataflow(*operators: tuple[str, str, dict[str, object]]) -> DataflowSpec:
    """source ``in`` -> the operators in a row -> sink ``out``."""
    nodes: list[dict[str, object]] = [{"name": "in", "type": "source", "endpoint": "local", "topic": "in"}]
    nodes += [{"name": name, "type": kind, "module": name, **extra} for name, kind, extra in operators]
    nodes.append({"name": "out", "type": "sink", "endpoint": "local", "topic": "out"})
    edges = [{"from": a["name"], "to": b["name"]} for a, b in itertools.pairwise(nodes)]
    return DataflowSpec.model_validate({"endpoints": ENDPOINTS, "nodes": nodes, "edges": edges})


def messages(*payloads: str, topic: str = "in") -> list[Message]:
    return [Message(p.encode(), topic) for p in payloads]


def test_a_graph_without_timestamps_sends_no_progress_marker_but_one_end_per_connection(
    load: Callable[..., OperatorNode],
) -> None:
    spec = dataflow(("op", "map", {}))
    runtime = Runtime(
        dataflow_graph(spec),
        operators={"op": load()},
        sources={"in": ListSource(messages("a", "b", "c"))},
        sinks={"out": ListSink()},
    )
    seen: list[object] = []
    for queue in runtime.queues.values():
        put = queue.put

        async def recording(entry: Item | Progress, put: Callable[..., object] = put) -> None:
            seen.append(entry)
            await put(entry)  # type: ignore[misc]

        queue.put = recording  # type: ignore[method-assign,assignment]
    asyncio.run(runtime.run())
    markers = [e.frontier for e in seen if isinstance(e, Progress)]
    assert markers == [END, END]  # in -> op, op -> out: the end, nothing else
    assert sum(isinstance(e, Item) for e in seen) == 6


def test_an_operator_failure_goes_to_the_dead_letter_sink_with_an_envelope(
    load: Callable[..., OperatorNode],
) -> None:
    spec = dataflow(("op", "map", {"errorPolicy": DEAD_LETTER.model_dump(by_alias=True)}))
    source, out, failed = ListSource(messages("ok", "xbad")), ListSink(), ListSink()
    runtime = Runtime(
        dataflow_graph(spec),
        operators={"op": load(wat.on_first_byte("x", wat.ERR))},
        sources={"in": source},
        sinks={"out": out},
        dead_letters={("local", "failed"): failed},
    )
    asyncio.run(runtime.run())
    assert [m.payload for m in out.sent] == [b"ok"]
    (envelope,) = failed.sent
    body = json.loads(envelope.payload)
    assert (body["node"], body["kind"], body["payload"]) == ("op", "error", "xbad")
    assert runtime.stats["op"].dead_lettered == 1
    assert source.acked == 2


def test_a_count_window_closes_early_when_the_sources_budget_is_full_and_nothing_else_holds_it(
    host: EngineHost,
) -> None:
    spec = dataflow(("sum", "accumulate", {"window": {"count": 10}}))
    operator = host.load(OperatorSpec("sum", OperatorKind.ACCUMULATE, wat.operator("accumulate")))
    source, out = BudgetSource(messages("1", "2", "3"), budget=3), ListSink()
    runtime = Runtime(
        dataflow_graph(spec),
        operators={"sum": operator},
        sources={"in": source},
        sinks={"out": out},
    )

    async def scenario() -> None:
        running = asyncio.create_task(runtime.run())
        await asyncio.wait_for(out.arrived.wait(), timeout=30)
        await runtime.drain()
        await running

    asyncio.run(scenario())
    assert len(out.sent) == 1  # one window of 3, not 10
    assert runtime.stats["sum"].windows_closed_early == 1
    assert source.acked == 3


AIO_MAP = """
operations:
  - {operationType: source, name: source}
  - {operationType: map, name: f2c/map, module: "f2c:1"}
  - {operationType: sink, name: sink}
connections:
  - {from: {name: source}, to: {name: f2c/map}}
  - {from: {name: f2c/map}, to: {name: sink}}
"""


def test_an_aio_graph_dead_letters_an_item_its_operator_fails(
    component_bytes: Callable[[str], bytes], host: EngineHost
) -> None:
    graph = definition_graph(parse_graph(AIO_MAP))
    spec = AioNodeSpec("f2c/map", "map", component_bytes("aio_f2c_map"), timeout_seconds=5.0)
    operator = AioOperatorNode(host, spec, state=MemoryStateStore(), aio_metrics=None)
    operator.start()
    good = json.dumps({"value": 212, "unit": "F"})
    source, out, failed = ListSource(messages(good, "not json")), ListSink(), ListSink()
    runtime = Runtime(
        graph,
        error_policy=DEAD_LETTER,
        operators={"f2c/map": operator},
        sources={"source": source},
        sinks={"sink": out},
        dead_letters={("local", "failed"): failed},
        time=FrontierTime(),
        values=AIO_VALUES,
    )
    asyncio.run(runtime.run())
    operator.close()
    assert [json.loads(m.payload) for m in out.sent] == [{"value": 100.0, "unit": "C"}]
    (envelope,) = failed.sent
    body = json.loads(envelope.payload)
    assert (body["node"], body["kind"], body["payload"]) == ("f2c/map", "trap", "not json")
    assert source.acked == 2


AIO_PASS = """
operations:
  - {operationType: source, name: source}
  - {operationType: sink, name: sink}
connections:
  - {from: {name: source}, to: {name: sink}}
"""


def test_an_aio_graph_keeps_a_window_of_sends_in_flight() -> None:
    graph = definition_graph(parse_graph(AIO_PASS))
    source, out = ListSource(messages(*(str(i) for i in range(10)))), GatedSink(expect=4)
    runtime = Runtime(
        graph,
        operators={},
        sources={"source": source},
        sinks={"sink": out},
        time=FrontierTime(),
        values=AIO_VALUES,
        sink_window=4,
    )

    async def scenario() -> None:
        running = asyncio.create_task(runtime.run())
        await asyncio.wait_for(out.full.wait(), timeout=30)
        out.gate.set()
        await running

    asyncio.run(scenario())
    assert out.peak == 4
    assert [m.payload for m in out.sent] == [str(i).encode() for i in range(10)]  # in order
    assert source.acked == 10


AIO_CONCATENATE = """
operations:
  - {operationType: source, name: a}
  - {operationType: source, name: b}
  - {operationType: concatenate, name: merge}
  - {operationType: sink, name: sink}
connections:
  - {from: {name: a}, to: {name: merge}}
  - {from: {name: b}, to: {name: merge}}
  - {from: {name: merge}, to: {name: sink}}
"""


def test_concatenate_emits_its_inputs_in_timestamp_order() -> None:
    graph = definition_graph(parse_graph(AIO_CONCATENATE))

    def stamped(*ms: int) -> list[Message]:
        return [Message(str(t).encode(), "in", timestamp_ms=t) for t in ms]

    out = ListSink()
    runtime = Runtime(
        graph,
        operators={},
        sources={"a": ListSource(stamped(1000, 3000, 5000)), "b": ListSource(stamped(2000, 4000))},
        sinks={"sink": out},
        time=FrontierTime(),
        values=AIO_VALUES,
    )
    asyncio.run(runtime.run())
    assert [m.timestamp_ms for m in out.sent] == [1000, 2000, 3000, 4000, 5000]
