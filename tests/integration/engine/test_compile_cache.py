"""A worker restart does not recompile; a damaged cache entry costs a compile, never a start.

The restart test uses a real 18 MB componentize-py component (compiling it takes seconds); the damage tests use a
small WAT component so they stay fast.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from tests.components.engine import wat
from wasmflow.api.kinds import OperatorKind
from wasmflow.engine.cache import CompiledCache
from wasmflow.engine.host import EngineHost, OperatorSpec
from wasmflow.engine.message import Message
from wasmflow.engine.metrics import EngineMetrics

Bytes = Callable[[str], bytes]
MSG = Message(b"hello", "t")


def start(cache: Path, component: bytes) -> EngineMetrics:
    """A worker-like start: a fresh host (as after a restart) loads one node and runs a message."""
    metrics = EngineMetrics(CollectorRegistry())
    with EngineHost(cache_dir=cache, metrics=metrics) as host:
        node = host.load(OperatorSpec("id", OperatorKind.MAP, component))
        assert node.map(MSG) == MSG
    return metrics


def results(metrics: EngineMetrics) -> dict[str, float]:
    return {
        r: metrics.registry.get_sample_value("wasmflow_compile_cache_total", {"result": r}) or 0.0
        for r in ("hit", "miss", "corrupt")
    }


def test_a_second_start_loads_the_compiled_component_from_the_cache(tmp_path: Path, component_bytes: Bytes) -> None:
    component = component_bytes("identity_map")
    first = start(tmp_path, component)
    assert results(first) == {"hit": 0, "miss": 1, "corrupt": 0}
    second = start(tmp_path, component)
    assert results(second) == {"hit": 1, "miss": 0, "corrupt": 0}


def test_a_corrupt_entry_is_recompiled_and_replaced(tmp_path: Path) -> None:
    component = wat.operator()
    start(tmp_path, component)
    [entry] = tmp_path.glob("*.cwasm")
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    metrics = start(tmp_path, component)
    assert results(metrics) == {"hit": 0, "miss": 1, "corrupt": 1}
    assert results(start(tmp_path, component))["hit"] == 1


def test_a_truncated_entry_is_recompiled(tmp_path: Path) -> None:
    component = wat.operator()
    start(tmp_path, component)
    [entry] = tmp_path.glob("*.cwasm")
    entry.write_bytes(entry.read_bytes()[:1000])
    metrics = start(tmp_path, component)
    assert results(metrics)["miss"] == 1


def test_an_entry_wasmtime_refuses_is_recompiled(tmp_path: Path) -> None:
    # A well-formed entry (its checksum matches) that is not a compiled component at all.
    component = wat.operator()
    start(tmp_path, component)
    [entry] = tmp_path.glob("*.cwasm")
    key = entry.name.split("-")[0]
    entry.unlink()
    CompiledCache(tmp_path).store(key, b"\x7fELF not really")
    metrics = start(tmp_path, component)
    assert results(metrics) == {"hit": 0, "miss": 1, "corrupt": 1}


def test_fuel_and_no_fuel_are_cached_separately(tmp_path: Path) -> None:
    component = wat.operator()
    with EngineHost(cache_dir=tmp_path) as host:
        host.load(OperatorSpec("a", OperatorKind.MAP, component))
        host.load(OperatorSpec("b", OperatorKind.MAP, component, fuel=10**9))
    assert len(list(tmp_path.glob("*.cwasm"))) == 2


def test_nodes_loading_the_same_new_component_at_once_compile_it_once(tmp_path: Path) -> None:
    # The worker loads its nodes side by side in threads; two nodes of one module must not compile it twice.
    component = wat.operator()
    metrics = EngineMetrics(CollectorRegistry())
    with EngineHost(cache_dir=tmp_path, metrics=metrics) as host:
        barrier = threading.Barrier(4)
        loaded: list[str] = []

        def load(name: str) -> None:
            barrier.wait()
            loaded.append(host.load(OperatorSpec(name, OperatorKind.MAP, component)).map(MSG).topic)

        threads = [threading.Thread(target=load, args=(f"node-{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert loaded == ["t"] * 4
    assert results(metrics)["miss"] == 1
