"""Run in a fresh process by bench_engine: load N instances of one component, print the resident set size.

``python -m bench.probe_rss MODE COUNT COMPONENT CACHE_DIR`` with MODE:

* ``ours``: ``EngineHost.load`` COUNT times (store limits, sandboxed WASI, epoch deadline, fast codec), the compiled
  component taken from the engine's on-disk cache as a worker restart does;
* ``stock``: what a wasmtime-py user writes: one ``Linker`` with WASI 0.2 and the logging import, then COUNT
  ``Store`` + ``instantiate`` + ``init``, the compiled component deserialised from the same cache entry;
* ``baseline``: everything imported and the component deserialised, no instance (COUNT is ignored).

Every instance answers one message (``ours`` and ``stock``) so lazily touched memory is counted.
"""

from __future__ import annotations

import sys
from pathlib import Path

from wasmtime import Config, Engine, Store, WasiConfig
from wasmtime.component import Component, Func, Instance, Linker, Record

from bench.services import rss_bytes
from wasmflow.api.kinds import OperatorKind
from wasmflow.engine import codec
from wasmflow.engine.cache import CompiledCache, cache_key
from wasmflow.engine.host import EngineHost, OperatorSpec
from wasmflow.engine.message import Message

MESSAGE = Message(b'{"sensor":"s1","value":98.6}', "factory/1/temperature", "application/json", (("site", "a"),), 1)


def _ours(count: int, data: bytes, cache: Path) -> int:
    with EngineHost(cache_dir=cache) as host:
        spec = OperatorSpec("probe", OperatorKind.MAP, data, timeout_seconds=5.0)
        nodes = [host.load(spec) for _ in range(count)]
        for node in nodes:
            node.map(MESSAGE)
        return rss_bytes()


def _compiled(engine: Engine, data: bytes, cache: Path) -> Component:
    """The component from the engine's cache when this engine's settings match an entry, else compiled."""
    digest = OperatorSpec("probe", OperatorKind.MAP, data).content_digest()
    path, _corrupt = CompiledCache(cache).find(cache_key(digest, "epoch_interruption=1;consume_fuel=0"))
    if path is not None:
        return Component.deserialize_file(engine, str(path))
    return Component(engine, data)


def _export(store: Store, instance: Instance, interface: str, name: str) -> Func:
    index = instance.get_export_index(store, interface)
    func_index = instance.get_export_index(store, name, index) if index is not None else None
    func = instance.get_func(store, func_index) if func_index is not None else None
    if func is None:
        raise RuntimeError(f"the component has no {interface}#{name}")
    return func


def _stock(count: int, data: bytes, cache: Path) -> int:
    config = Config()
    config.epoch_interruption = True  # the same settings as the cached entry, so it deserialises
    engine = Engine(config)
    component = _compiled(engine, data, cache)
    linker = Linker(engine)
    linker.add_wasip2()
    with linker.root() as root, root.add_instance("wasmflow:operator/logging@0.1.0") as logging:
        logging.add_func("log", lambda _store, _level, _message: None)
    stores = []
    for _ in range(count):
        store = Store(engine)
        store.set_epoch_deadline(10**9)
        store.set_wasi(WasiConfig())
        instance = linker.instantiate(store, component)
        init = _export(store, instance, "wasmflow:operator/lifecycle@0.1.0", "init")
        process = _export(store, instance, "wasmflow:operator/map@0.1.0", "process")
        configuration = Record()
        setattr(configuration, "node", "probe")  # noqa: B010 - Record fields are dynamic
        setattr(configuration, "properties", [])  # noqa: B010
        init(store, configuration)
        process(store, codec.to_record(MESSAGE))
        stores.append(store)
    return rss_bytes()


def _baseline(data: bytes, cache: Path) -> int:
    config = Config()
    config.epoch_interruption = True
    engine = Engine(config)
    component = _compiled(engine, data, cache)
    assert component is not None
    return rss_bytes()


def main(argv: list[str]) -> None:
    mode, count, component, cache = argv[0], int(argv[1]), Path(argv[2]), Path(argv[3])
    data = component.read_bytes()
    if mode == "ours":
        print(_ours(count, data, cache))
    elif mode == "stock":
        print(_stock(count, data, cache))
    elif mode == "baseline":
        print(_baseline(data, cache))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
