"""AIO accumulate (wasm-graph:processor@1.1.0): fold {"value": V} messages into {"count", "min", "max", "sum"}.

The first call of a window gets an empty staged message; later calls get what the previous one returned.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types


def payload_bytes(payload: types.BufferOrBytes) -> bytes:
    if isinstance(payload, types.BufferOrBytes_Buffer):
        return payload.value.read()
    return payload.value


class Accumulate(exports.Accumulate):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        return True

    def process(self, staged: types.DataModel, message: list[types.DataModel]) -> types.DataModel:
        if not isinstance(staged, types.DataModel_Message):
            raise Err(types.Error("expected a staged message"))
        raw = payload_bytes(staged.value.payload)
        total = json.loads(raw) if raw else {"count": 0, "min": None, "max": None, "sum": 0.0}
        for item in message:
            if not isinstance(item, types.DataModel_Message):
                raise Err(types.Error("expected messages"))
            value = float(json.loads(payload_bytes(item.value.payload))["value"])
            total["count"] += 1
            total["sum"] += value
            total["min"] = value if total["min"] is None else min(total["min"], value)
            total["max"] = value if total["max"] is None else max(total["max"], value)
            staged.value.topic = item.value.topic
        staged.value.payload = types.BufferOrBytes_Bytes(json.dumps(total, separators=(",", ":")).encode())
        return staged
