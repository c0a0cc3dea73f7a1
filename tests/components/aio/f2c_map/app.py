"""AIO map (tinykube-graph:processor@1.0.0): {"value": F, "unit": "F"} -> the same object in Celsius.

Written the way an AIO author writes it: the payload may come as a host buffer (read it) or as bytes, and the
result is a new message with a `bytes` payload. Parameters: `precision` (decimal places, default 2).
"""

import json

from wit_world import exports
from wit_world.imports import logger, types

PRECISION = 2


def payload_bytes(payload: types.BufferOrBytes) -> bytes:
    if isinstance(payload, types.BufferOrBytes_Buffer):
        return payload.value.read()
    return payload.value


class Map(exports.Map):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        global PRECISION
        for key, value in configuration.properties:
            if key == "precision":
                if not value.isdigit():
                    logger.log(logger.Level.ERROR, "f2c/map", f"precision must be a whole number, got {value!r}")
                    return False
                PRECISION = int(value)
        logger.log(logger.Level.INFO, "f2c/map", f"init: precision {PRECISION}")
        return True

    def process(self, message: types.DataModel) -> types.DataModel:
        if not isinstance(message, types.DataModel_Message):
            raise ValueError("expected a message")
        body = json.loads(payload_bytes(message.value.payload))
        if body.get("unit") == "F":
            body["value"] = round((float(body["value"]) - 32) * 5 / 9, PRECISION)
            body["unit"] = "C"
        message.value.payload = types.BufferOrBytes_Bytes(json.dumps(body, separators=(",", ":")).encode())
        return message
