"""Business rules for a map, with no SDK (wasmflow:map-rules): multiplies the JSON "value" by the "factor" property
and says which language did it, so a test can tell two rules components apart."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import rules

FACTOR = 1.0


class Rules(exports.Rules):
    def init(self, properties: list[tuple[str, str]]) -> None:
        global FACTOR
        for key, value in properties:
            if key == "factor":
                try:
                    FACTOR = float(value)
                except ValueError:
                    raise Err(f"factor must be a number, got {value!r}")

    def process(self, input: rules.Message) -> rules.Message:
        payload = input.payload
        text = payload.value if isinstance(payload, rules.Payload_Text) else payload.value.decode()
        try:
            document = json.loads(text)
            value = float(document["value"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Err(f"not a reading: {exc}")
        input.payload = rules.Payload_Text(json.dumps({"value": value * FACTOR, "by": "python"}))
        return input
