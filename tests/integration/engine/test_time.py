"""The frontier time (engine/time.py) on the one runtime, with real AIO operators: a window closes on the clock
when the input goes idle."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable

from prometheus_client import CollectorRegistry

from tests.components.build import cache_dir
from wasmflow.api.frontends.aio import definition_graph, parse_graph
from wasmflow.connectors.jsonl import JsonLinesSink
from wasmflow.engine.aio_host import AioNodeSpec, AioOperatorNode
from wasmflow.engine.aio_state import MemoryStateStore
from wasmflow.engine.host import EngineHost
from wasmflow.engine.message import Message
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.engine.ports import Inbound
from wasmflow.engine.runtime import Runtime
from wasmflow.engine.time import FrontierTime
from wasmflow.engine.values import AIO_VALUES

WINDOW = """
operations:
  - {operationType: source, name: source}
  - {operationType: delay, name: window/delay, module: "window:1"}
  - {operationType: accumulate, name: average/accumulate, module: "average:1"}
  - {operationType: sink, name: sink}
moduleConfigurations:
  - name: window/delay
    parameters: {windowMs: {name: windowMs, default: "500"}}
connections:
  - {from: {name: source}, to: {name: window/delay}}
  - {from: {name: window/delay}, to: {name: average/accumulate}}
  - {from: {name: average/accumulate}, to: {name: sink}}
"""


class LiveSource:
    """A source like a broker subscription: it yields what it is given and then waits, never ending by itself."""

    def __init__(self, values: list[float]) -> None:
        self.values = values
        self.stopped = asyncio.Event()

    async def messages(self) -> AsyncIterator[Inbound]:
        for value in self.values:
            yield Inbound(Message(json.dumps({"value": value}).encode(), "plant/t1"))
        await self.stopped.wait()

    async def stop(self) -> None:
        self.stopped.set()


def test_an_idle_source_still_closes_its_window_on_the_clock(component_bytes: Callable[[str], bytes]) -> None:
    graph = definition_graph(parse_graph(WINDOW))
    output = io.StringIO()

    async def scenario() -> tuple[bool, list[dict[str, object]]]:
        with EngineHost(cache_dir=cache_dir().parent / "compiled", metrics=EngineMetrics(CollectorRegistry())) as host:
            operators = {}
            for name, built in (("window/delay", "aio_window_delay"), ("average/accumulate", "aio_average_accumulate")):
                spec = AioNodeSpec(
                    name, graph.step(name).value, component_bytes(built), parameters=graph.nodes[name].parameters,
                    timeout_seconds=2.0,
                )  # fmt: skip
                operators[name] = AioOperatorNode(host, spec, state=MemoryStateStore(), aio_metrics=None)
                operators[name].start()
            sink = JsonLinesSink("sink", output)
            pipeline = Runtime(
                graph,
                operators=operators,
                sources={"source": LiveSource([1.0, 2.0, 6.0])},
                sinks={"sink": sink},
                time=FrontierTime(physical_clock=True, idle_seconds=0.1),
                values=AIO_VALUES,
            )
            running = asyncio.create_task(pipeline.run())
            for _ in range(300):  # the window is at most 0.5 s long, plus one idle tick
                if sink.sent:
                    break
                await asyncio.sleep(0.05)
            closed_while_idle = bool(sink.sent)
            await pipeline.drain()
            await asyncio.wait_for(running, 30)
            for operator in operators.values():
                operator.close()
            return closed_while_idle, [json.loads(m.payload) for m in sink.sent]

    closed_while_idle, windows = asyncio.run(scenario())
    assert closed_while_idle  # emitted while the source was still open: the clock, not the end of input, closed it
    assert sum(w["count"] for w in windows) == 3  # type: ignore[misc]
    assert sum(w["sum"] for w in windows) == 9.0  # type: ignore[misc]
    assert len(windows) <= 2  # the three items arrive within one tick of each other: one window, or two at a boundary
