"""Engine figures: host overhead per message, worker start with a warm compiled cache, memory per instance.

Every per-message figure is measured next to its comparators in the same run:

* ``raw core-wasm call``: the floor. A core module's identity function called through wasmtime-py's core API, the
  payload written into and read back out of linear memory: what moving the bytes across costs with no component
  model at all.
* ``stock component call``: the same component called with wasmtime-py's ``Func.__call__`` and ``Record`` values.
* ours: ``OperatorNode.map`` (deadline, metrics, fast codec).

Payloads are ASCII (they travel as ``text``) unless the figure says binary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import wasmtime
from prometheus_client import CollectorRegistry
from tests.components.build import build
from tests.components.build import cache_dir as components_dir
from tests.components.engine import wat
from wasmtime.component import Record

from bench.report import Sample, repeat, time_per_call
from wasmflow.api.kinds import OperatorKind
from wasmflow.engine import codec
from wasmflow.engine.host import EngineHost, OperatorNode, OperatorSpec
from wasmflow.engine.message import Message
from wasmflow.engine.metrics import EngineMetrics

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"0 B": 0, "1 KiB": 1024, "16 KiB": 16384}

_CORE_IDENTITY = """(module
  (memory (export "memory") 1)
  (func (export "process") (param $ptr i32) (param $len i32) (result i32) (local.get $len)))"""


def _raw_core(size: int) -> Sample:
    """The floor: bytes into linear memory, a core call, bytes back out."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, wasmtime.wat2wasm(_CORE_IDENTITY)), [])
    exports = instance.exports(store)
    memory, process = exports["memory"], exports["process"]
    assert isinstance(memory, wasmtime.Memory) and isinstance(process, wasmtime.Func)
    payload = b"x" * size

    def call() -> object:
        memory.write(store, payload, 1024)
        length = process(store, 1024, len(payload))
        return memory.read(store, 1024, 1024 + length)

    return repeat(lambda: time_per_call(call, 2000), runs=7)


def _stock(node: OperatorNode, msg: Message, calls: int) -> Sample:
    """The same instance, called through wasmtime-py's public API (what the engine would do without its codec)."""
    live = node._live
    assert live is not None
    store = live.store
    func = node._func(store, live.instance, node._operator_name, "process")
    record: Record = codec.to_record(msg)
    return repeat(lambda: time_per_call(lambda: func(store, record), calls), runs=5)


def _ours(node: OperatorNode, msg: Message, calls: int) -> Sample:
    return repeat(lambda: time_per_call(lambda: node.map(msg), calls), runs=7)


def _per_message(host: EngineHost, label: str, component: bytes, binary: bool = False) -> list[dict[str, Any]]:
    figures = []
    for size_name, size in SIZES.items():
        payload = (b"\xff" if binary else b"x") * size
        msg = Message(payload, "factory/1/temperature", "application/json", (("site", "plant"),), 1)
        node = host.load(OperatorSpec(f"bench-{label}", OperatorKind.MAP, component, timeout_seconds=5.0))
        ours = _ours(node, msg, 300 if binary and size > 1024 else 2000)
        stock = _stock(node, msg, 20 if binary and size > 1024 else 200)
        raw = _raw_core(size)
        overhead = ours.median - raw.median
        figures.append(
            {
                "name": f"engine: {label} identity map, {size_name}{' binary' if binary else ''}, per message",
                "unit": "s",
                "ours": ours,
                "comparators": {"raw core-wasm call": raw, "stock component call": stock},
                "target": _target(label, size, binary),
                "note": f"host overhead over the raw call: {overhead * 1e6:.1f} µs",
            }
        )
        node.close()
    return figures


def _target(label: str, size: int, binary: bool) -> str:
    if binary or size != 1024:
        return ""
    if label == "WAT":
        return "within 25 µs of the raw call"
    return "< 100 µs end to end (stock: ~1.1 ms)"


_START = textwrap.dedent(
    """
    import sys, time
    started = time.perf_counter()
    from pathlib import Path
    from wasmflow.api.kinds import OperatorKind
    from wasmflow.engine.host import EngineHost, OperatorSpec
    from wasmflow.engine.message import Message
    with EngineHost(cache_dir=Path(sys.argv[1])) as host:
        for path, kind in zip(sys.argv[2::2], sys.argv[3::2]):
            host.load(OperatorSpec(Path(path).stem, OperatorKind(kind), Path(path).read_bytes()))
    print(time.perf_counter() - started)
    """
)


def _worker_start(cache: Path, components: list[tuple[Path, str]]) -> float:
    """A fresh Python process that imports the engine and loads ``components`` (what a worker restart does)."""
    args = [a for path, kind in components for a in (str(path), kind)]
    out = subprocess.run(
        [sys.executable, "-c", _START, str(cache), *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "controller")},
    )
    return float(out.stdout.strip().splitlines()[-1])


def _start_figure() -> dict[str, Any]:
    components = [
        (build(n), k) for n, k in (("f2c_map", "map"), ("range_filter", "filter"), ("threshold_branch", "branch"))
    ]
    with tempfile.TemporaryDirectory(prefix="wasmflow-bench-cache-") as tmp:
        cache = Path(tmp)
        uncached = Sample.of([_worker_start(cache, components)])
        cached = Sample.of([_worker_start(cache, components) for _ in range(5)])
    return {
        "name": "engine: worker start, 3 componentize-py operators, warm compiled cache",
        "unit": "s",
        "ours": cached,
        "comparators": {"cold cache (compile)": uncached},
        "target": "< 1 s",
        "note": "fresh process: imports, cache verification, deserialize, instantiate, init",
    }


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _rss_figure(host: EngineHost, label: str, component: bytes, count: int) -> dict[str, Any]:
    spec = OperatorSpec(f"rss-{label}", OperatorKind.MAP, component)
    nodes = [host.load(spec)]
    nodes[0].map(Message(b"warm", "t"))
    samples = []
    for _ in range(count):
        before = _rss()
        node = host.load(spec)
        node.map(Message(b"warm", "t"))
        nodes.append(node)
        samples.append(float(_rss() - before))
    for node in nodes:
        node.close()
    return {
        "name": f"engine: RSS per extra {label} instance",
        "unit": "bytes",
        "ours": Sample.of(samples),
        "note": f"{count} extra instances of one loaded component, each in its own store",
    }


def run() -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = []
    compiled = components_dir().parent / "compiled"
    with EngineHost(cache_dir=compiled, metrics=EngineMetrics(CollectorRegistry())) as host:
        wat_identity = wat.operator()
        python_identity = build("identity_map").read_bytes()
        figures += _per_message(host, "WAT", wat_identity)
        figures += _per_message(host, "WAT", wat_identity, binary=True)
        figures += _per_message(host, "componentize-py", python_identity)
        figures += _per_message(host, "componentize-py", python_identity, binary=True)
        figures.append(_rss_figure(host, "componentize-py", python_identity, 10))
        figures.append(_rss_figure(host, "WAT", wat_identity, 10))
    figures.append(_start_figure())
    return figures
