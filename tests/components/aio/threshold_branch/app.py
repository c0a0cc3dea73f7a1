"""AIO branch (wasm-graph:processor@1.1.0): `true` (arm "True") when {"value": V} is above `threshold`, else `false`."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import hybrid_logical_clock, types

THRESHOLD = [0.0]


def payload_bytes(payload: types.BufferOrBytes) -> bytes:
    if isinstance(payload, types.BufferOrBytes_Buffer):
        return payload.value.read()
    return payload.value


class Branch(exports.Branch):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        for key, value in configuration.properties:
            if key == "threshold":
                THRESHOLD[0] = float(value)
        return True

    def process(self, timestamp: hybrid_logical_clock.HybridLogicalClock, message: types.DataModel) -> bool:
        if not isinstance(message, types.DataModel_Message):
            raise Err(types.Error("expected a message"))
        return float(json.loads(payload_bytes(message.value.payload))["value"]) > THRESHOLD[0]
