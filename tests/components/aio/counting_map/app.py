"""AIO map (wasm-graph:processor@1.1.0) using the host's state store and metrics.

Each message's {"sensor": S, ...} gets "seen": how many messages of sensor S the graph has processed, kept in the
state store under key `seen/<S>` (so every replica and every instance counts together). It counts
`messages` (labelled by sensor) and records each value into the `value` histogram.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import metrics, state_store, state_store_types, types


def payload_bytes(payload: types.BufferOrBytes) -> bytes:
    if isinstance(payload, types.BufferOrBytes_Buffer):
        return payload.value.read()
    return payload.value


class Map(exports.Map):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        return True

    def process(self, message: types.DataModel) -> types.DataModel:
        if not isinstance(message, types.DataModel_Message):
            raise Err(types.Error("expected a message"))
        body = json.loads(payload_bytes(message.value.payload))
        sensor = str(body.get("sensor", "unknown"))
        key = f"seen/{sensor}".encode()
        try:
            current = state_store.get(key, None).response
            seen = int(current or b"0") + 1
            state_store.set(
                key,
                str(seen).encode(),
                None,
                None,
                state_store_types.SetOptions(state_store_types.SetConditions.UNCONDITIONAL, None),
            )
            metrics.add_to_counter("messages", metrics.CounterValue_U64(1), [metrics.Label("sensor", sensor)])
            metrics.record_to_histogram("value", metrics.HistogramValue_F64(float(body.get("value", 0))), None)
        except Err as exc:
            raise Err(types.Error(f"host call failed: {exc.value}"))
        body["seen"] = seen
        message.value.payload = types.BufferOrBytes_Bytes(json.dumps(body, separators=(",", ":")).encode())
        return message
