"""``limits.memory`` bounds an operator instance as a whole, not each of its linear memories.

wasmtime's store limits apply to each memory and each table: a component instantiating six core modules with a
60 MiB memory each ran under a 64 MiB limit and took 360 MiB. The engine now counts the memories a component
defines (a composed one has two) and gives each an equal share of the limit, and tables and core instances are
bounded in number and size.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from wasmtime import wat2wasm

from tests.components.engine import wat
from tests.fault_report import Report
from wasmflow.api.kinds import OperatorKind
from wasmflow.contract.check import check_component
from wasmflow.engine import sandbox
from wasmflow.engine.host import EngineHost, OperatorSpec
from wasmflow.engine.message import Message
from wasmflow.errors import EngineError, OperatorFailure

LIMIT = 64 * 2**20
#: 60 MiB in 64 KiB pages: under the limit for one memory, six times over it for six.
PAGES = 960


@pytest.fixture
def host() -> Iterator[EngineHost]:
    with EngineHost(cache_dir=None) as engine_host:
        yield engine_host


def spec(component: bytes, node: str = "op") -> OperatorSpec:
    return OperatorSpec(node, OperatorKind.MAP, component, memory_bytes=LIMIT, timeout_seconds=10.0)


def test_memories_that_each_fit_but_together_exceed_the_limit_cannot_grow_past_their_share(
    host: EngineHost, report: Report
) -> None:
    node = host.load(spec(wat.spread_memory(memories=5, pages=PAGES)))
    with pytest.raises(OperatorFailure):
        node.map(Message(b"x", "t"))
    report(memories=6, each_mib=PAGES // 16, limit_mib=LIMIT >> 20, share_mib=(LIMIT // 6) >> 20, refused=True)


def test_memories_that_together_fit_the_limit_run() -> None:
    with EngineHost(cache_dir=None) as engine_host:
        # Six memories of 8 MiB more each: 48 MiB in all, under a share of 64 / 6 MiB each.
        node = engine_host.load(spec(wat.spread_memory(memories=5, pages=128)))
        assert node.map(Message(b"x", "t")) == Message(b"x", "t")


TWO_MEMORIES = "(component (core module $m (memory 1) (memory 1)) (core instance (instantiate $m)))"


def test_each_memory_a_module_declares_takes_its_share_of_the_limit() -> None:
    limits = sandbox.StoreLimits.for_component(LIMIT, wat2wasm(TWO_MEMORIES))
    assert (limits.memories, limits.memory_bytes_each) == (2, LIMIT // 2)


def test_an_operator_using_wasm_gc_is_refused_when_compiled(host: EngineHost) -> None:
    """GC objects would live in a heap beside the linear memory, limited apart from it."""
    with pytest.raises(EngineError, match=r"(?s)cannot compile the component.*gc"):
        host.load(spec(wat.gc_arrays(arrays=7)))
    (problem,) = check_component(wat.gc_arrays(arrays=7)).problems
    assert "gc" in problem.message


def test_more_tables_than_an_instance_may_have_are_refused_at_start(host: EngineHost) -> None:
    count = sandbox.StoreLimits.tables + 1
    tables = "\n".join(
        f"(core module $t{i} (table 1 funcref)) (core instance (instantiate $t{i}))" for i in range(count)
    )
    with pytest.raises(EngineError, match="more tables than one operator instance may have"):
        host.load(spec(wat.operator(linked=(tables, "", ""))))


def test_one_memory_may_use_all_of_its_limit(host: EngineHost) -> None:
    node = host.load(spec(wat.operator(body=wat.grow_and_fill(PAGES))))
    assert node.map(Message(b"x", "t")) == Message(b"x", "t")
