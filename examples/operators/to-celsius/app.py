"""to-celsius: converts Fahrenheit readings to Celsius. Configuration: `precision` (decimal places, default 1).

In:  {"sensor": "press-1", "value": 212.0, "unit": "F", ...}
Out: {"sensor": "press-1", "value": 100.0, "unit": "C", ...}   (readings already in C pass through unchanged)
"""

import json

from wit_world import exports
from wit_world.imports import types

from wasmflow_guest import CONFIG, Reject, configure, guard, payload_bytes, with_payload


def transform(body: dict) -> dict:
    """Return the new JSON body. Raise Reject("why") to send the message to the error policy."""
    if "value" not in body:
        raise Reject("reading has no 'value'")
    if body.get("unit", "F") == "F":
        precision = int(CONFIG.get("precision", "1"))
        body["value"] = round((float(body["value"]) - 32.0) * 5.0 / 9.0, precision)
        body["unit"] = "C"
    return body


class Lifecycle(exports.Lifecycle):
    def init(self, config: types.Configuration) -> None:
        configure(config)


class Map(exports.Map):
    def process(self, input: types.Message) -> types.Message:
        def run() -> types.Message:
            body = transform(json.loads(payload_bytes(input)))
            return with_payload(input, json.dumps(body, separators=(",", ":")).encode(), "application/json")

        return guard(run)
