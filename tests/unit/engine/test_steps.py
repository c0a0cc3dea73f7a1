"""The steps (engine/steps.py) as the runtime runs them on real WAT operators: a filter's drop, a branch's arms,
and a failure that fails one item only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.components.engine import wat
from tests.unit.engine.ports import ListSink, ListSource
from wasmflow.api.dataflow import DataflowSpec
from wasmflow.api.frontends.dataflow import dataflow_graph
from wasmflow.engine.host import OperatorNode
from wasmflow.engine.message import Message
from wasmflow.engine.runtime import Runtime
from wasmflow.engine.steps import Step

ENDPOINTS = {"local": {"mqtt": {"url": "mqtt://127.0.0.1:1883"}}}


def spec(kind: str) -> DataflowSpec:
    nodes = [
        {"name": "in", "type": "source", "endpoint": "local", "topic": "in"},
        {"name": "op", "type": kind, "module": "op"},
        {"name": "yes", "type": "sink", "endpoint": "local", "topic": "yes"},
        {"name": "no", "type": "sink", "endpoint": "local", "topic": "no"},
    ]
    edges = [{"from": "in", "to": "op"}]
    if kind == "branch":
        edges += [{"from": "op", "to": "yes", "arm": True}, {"from": "op", "to": "no", "arm": False}]
    else:
        nodes.pop()
        edges.append({"from": "op", "to": "yes"})
    return DataflowSpec.model_validate({"endpoints": ENDPOINTS, "nodes": nodes, "edges": edges})


def run(kind: str, operator: OperatorNode, *payloads: str) -> tuple[Runtime, dict[str, ListSink], ListSource]:
    graph = dataflow_graph(spec(kind))
    sinks = {name: ListSink() for name in graph.sinks}
    source = ListSource([Message(p.encode(), "in") for p in payloads])
    runtime = Runtime(graph, operators={"op": operator}, sources={"in": source}, sinks=dict(sinks))
    asyncio.run(runtime.run())
    return runtime, sinks, source


def test_concatenate_is_the_only_step_without_a_module() -> None:
    assert [s for s in Step if not s.takes_module] == [Step.SOURCE, Step.CONCATENATE, Step.SINK]


def test_a_filter_drops_what_it_refuses_and_acknowledges_it(load: Callable[..., OperatorNode]) -> None:
    runtime, sinks, source = run("filter", load(kind="filter"), "yes", "no", "yay")
    assert [m.payload for m in sinks["yes"].sent] == [b"yes", b"yay"]
    assert runtime.stats["op"].dropped == 1
    assert source.acked == 3


def test_a_branch_sends_each_item_down_the_arm_it_chose(load: Callable[..., OperatorNode]) -> None:
    _, sinks, source = run("branch", load(kind="branch"), "yes", "no", "yay")
    assert [m.payload for m in sinks["yes"].sent] == [b"yes", b"yay"]
    assert [m.payload for m in sinks["no"].sent] == [b"no"]
    assert source.acked == 3


def test_a_failed_item_is_dropped_and_the_next_goes_on(load: Callable[..., OperatorNode]) -> None:
    runtime, sinks, source = run("map", load(wat.on_first_byte("x", wat.TRAP)), "xa", "b")
    assert [m.payload for m in sinks["yes"].sent] == [b"b"]
    assert runtime.stats["op"].failures == {"trap": 1}
    assert source.acked == 2
