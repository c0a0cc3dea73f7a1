"""Engine figures: host overhead per message (figure 1) and worker memory with 1, 5 and 20 instances (figure 6).

Every per-message figure is measured next to its comparators in the same run, on the same instance:

* ``raw core-wasm call (C API)``: the floor. A core module's identity function called through wasmtime's C API
  with prepared arguments, the payload copied into and out of linear memory: what moving the bytes across costs
  with no component model and no Python conversions.
* ``core call via wasmtime-py``: the same through wasmtime-py's public core API (it looks the function type up and
  converts every value on each call).
* ``stock component call``: the same component instance called with wasmtime-py's ``Func.__call__`` and
  ``Record`` values (what the engine would do without its codec).
* ours: ``OperatorNode.map`` end to end (epoch deadline, metrics, fast codec, result lifting).

Two components: the WAT identity map (the guest does nothing, so ours minus raw is the host's own overhead) and the
componentize-py identity map (what a Python author's operator costs end to end). Payloads are ASCII (they travel
as ``text``) unless the figure says binary (``list<u8>``).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmtime
from prometheus_client import CollectorRegistry
from tests.components.build import build
from tests.components.build import cache_dir as components_dir
from tests.components.engine import wat
from wasmtime import _ffi as ffi
from wasmtime.component import Record

from bench.report import Sample, compare
from wasmflow.api.kinds import OperatorKind
from wasmflow.engine import codec, sandbox
from wasmflow.engine.host import EngineHost, OperatorNode, OperatorSpec
from wasmflow.engine.message import Message
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.engine.worlds.operator import OperatorAdapter

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"0 B": 0, "1 KiB": 1024, "16 KiB": 16384}
INSTANCE_COUNTS = (1, 5, 20)

_CORE_IDENTITY = """(module
  (memory (export "memory") 1)
  (func (export "process") (param $ptr i32) (param $len i32) (result i32) (local.get $len)))"""


def _core_instance() -> tuple[wasmtime.Store, wasmtime.Memory, wasmtime.Func]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, bytes(wasmtime.wat2wasm(_CORE_IDENTITY))), [])
    exports = instance.exports(store)
    memory, process = exports["memory"], exports["process"]
    assert isinstance(memory, wasmtime.Memory) and isinstance(process, wasmtime.Func)
    return store, memory, process


def _raw_core(size: int) -> Callable[[], object]:
    """The floor: the payload copied into linear memory, one call through wasmtime's C API with prepared
    arguments, the result copied out. No type lookups, no value conversions: only what crossing costs."""
    store, memory, process = _core_instance()
    payload = b"x" * size
    params = (ffi.wasmtime_val_t * 2)()
    for param in params:
        param.kind = ffi.WASMTIME_I32.value
    params[0].of.i32 = 1024
    results = (ffi.wasmtime_val_t * 1)()
    trap = ctypes.POINTER(ffi.wasm_trap_t)()
    base = ctypes.addressof(memory.data_ptr(store).contents)  # one page, never grown: the address stays valid

    def call() -> bytes:
        ctypes.memmove(base + 1024, payload, len(payload))
        params[1].of.i32 = len(payload)
        error = ffi.wasmtime_func_call(
            store._context(), ctypes.byref(process._func), params, 2, results, 1, ctypes.byref(trap)
        )
        if error or trap:
            raise RuntimeError("the raw core call failed")
        return ctypes.string_at(base + 1024, results[0].of.i32)

    assert call() == payload
    return call


def _core_python(size: int) -> Callable[[], object]:
    """The same core call through wasmtime-py's public core API (``Memory.write``, ``Func.__call__``, ``read``)."""
    store, memory, process = _core_instance()
    payload = b"x" * size

    def call() -> object:
        memory.write(store, payload, 1024)
        length = process(store, 1024, len(payload))
        return memory.read(store, 1024, 1024 + length)

    assert call() == payload
    return call


def _stock(node: OperatorNode, msg: Message) -> Callable[[], object]:
    """The same instance, called through wasmtime-py's public API with its own value conversions."""
    live = node._live
    assert live is not None
    store = live.store
    adapter = node.adapter
    assert isinstance(adapter, OperatorAdapter)
    func = sandbox.export_func(store, live.instance, adapter.operator_export, "process", node.node)
    record: Record = codec.to_record(msg)

    def call() -> object:
        store.set_epoch_deadline(10**9)  # ours sets the node's deadline per call; a stock caller sets none
        return func(store, record)

    result: Any = call()  # result<message, operator-error>: a Variant whose ok payload is the message
    assert result.tag == "ok" and codec.from_record(result.payload).payload == msg.payload
    return call


def _ours(node: OperatorNode, msg: Message) -> Callable[[], object]:
    assert node.map(msg).payload == msg.payload
    return lambda: node.map(msg)


def _per_message(
    host: EngineHost, label: str, component: bytes, sizes: dict[str, int], *, binary: bool = False
) -> list[dict[str, Any]]:
    figures = []
    for size_name, size in sizes.items():
        payload = (b"\xff" if binary else b"x") * size
        msg = Message(payload, "factory/1/temperature", "application/json", (("site", "plant"),), 1)
        node = host.load(OperatorSpec(f"bench-{label}", OperatorKind.MAP, component, timeout_seconds=5.0))
        samples = compare(
            {
                "ours": _ours(node, msg),
                "raw": _raw_core(size),
                "core": _core_python(size),
                "stock": _stock(node, msg),
            }
        )
        node.close()
        ours, raw, stock = samples["ours"], samples["raw"], samples["stock"]
        note = f"ours - raw = {(ours.median - raw.median) * 1e6:.1f} µs"
        if binary:
            note += "; list<u8> crosses wasmtime's C API one value per byte (DESIGN.md section 6)"
        figures.append(
            {
                "name": f"1. identity map, {label}, {size_name}{' binary' if binary else ''}: per message",
                "unit": "s",
                "ours": ours,
                "comparators": {
                    "raw core-wasm call (C API)": raw,
                    "core call via wasmtime-py": samples["core"],
                    "stock wasmtime-py component call": stock,
                },
                "target": _target(label, size, binary),
                "note": note,
            }
        )
    return figures


def _target(label: str, size: int, binary: bool) -> str:
    if binary or size != 1024:
        return ""
    if label == "WAT":
        return "ours - raw < 25 µs"
    return "< 100 µs end to end (stock: ~1.1 ms)"


def _probe(mode: str, count: int, component: Path, cache: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "bench.probe_rss", mode, str(count), str(component), str(cache)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return float(out.stdout.strip().splitlines()[-1])


def _rss_figures(component: Path, cache: Path, runs: int = 2) -> list[dict[str, Any]]:
    """Fresh processes, so each figure is a worker's whole resident set, not what this process accumulated."""
    baseline = Sample.of([_probe("baseline", 0, component, cache) for _ in range(runs)])
    figures: list[dict[str, Any]] = []
    ours_by_count: dict[int, Sample] = {}
    for count in INSTANCE_COUNTS:
        ours = Sample.of([_probe("ours", count, component, cache) for _ in range(runs)])
        stock = Sample.of([_probe("stock", count, component, cache) for _ in range(runs)])
        ours_by_count[count] = ours
        figures.append(
            {
                "name": f"6. worker RSS, {count} componentize-py instance{'s' if count > 1 else ''}",
                "unit": "bytes",
                "ours": ours,
                "comparators": {"stock wasmtime-py, same instances": stock, "process, no instance": baseline},
                "note": f"{(ours.median - baseline.median) / count / 2**20:.1f} MiB per instance over the process",
            }
        )
    first, last = INSTANCE_COUNTS[0], INSTANCE_COUNTS[-1]
    extra = (ours_by_count[last].median - ours_by_count[first].median) / (last - first)
    figures[-1]["note"] += f"; {extra / 2**20:.1f} MiB per extra instance ({first} -> {last})"
    return figures


def run() -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = []
    compiled = components_dir().parent / "compiled-bench"
    python_path = build("identity_map")
    with EngineHost(cache_dir=compiled, metrics=EngineMetrics(CollectorRegistry())) as host:
        wat_identity = wat.operator()
        python_identity = python_path.read_bytes()
        figures += _per_message(host, "WAT", wat_identity, SIZES)
        figures += _per_message(host, "WAT", wat_identity, {"1 KiB": 1024, "16 KiB": 16384}, binary=True)
        figures += _per_message(host, "componentize-py", python_identity, SIZES)
        figures += _per_message(host, "componentize-py", python_identity, {"1 KiB": 1024, "16 KiB": 16384}, binary=True)
    figures += _rss_figures(python_path, compiled)
    return figures
