// map: {"value": F, ...} in Fahrenheit -> the same object with "value" in Celsius and "unit": "C".
// Configuration: `precision` (decimal places, default 2). A payload without a numeric "value" is an operator error.
let precision = 2;

function textOf(payload) {
  return payload.tag === "text" ? payload.val : new TextDecoder().decode(payload.val);
}

export const lifecycle = {
  init(config) {
    for (const [key, value] of config.properties) {
      if (key === "precision") {
        if (!/^[0-9]+$/.test(value)) throw `precision must be a whole number, got ${JSON.stringify(value)}`;
        precision = Number(value);
      }
    }
  },
};

export const map = {
  process(input) {
    let body;
    try {
      body = JSON.parse(textOf(input.payload));
    } catch (e) {
      throw { message: `expected JSON with a numeric 'value': ${e}` };
    }
    if (typeof body.value !== "number") throw { message: "expected JSON with a numeric 'value'" };
    const factor = 10 ** precision;
    body.value = Math.round(((body.value - 32) * 5 / 9) * factor) / factor;
    body.unit = "C";
    return {
      payload: { tag: "text", val: JSON.stringify(body) },
      topic: input.topic,
      contentType: "application/json",
      properties: input.properties,
      timestampMs: input.timestampMs,
    };
  },
};
