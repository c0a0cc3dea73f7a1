// in-range: drops readings outside the sensor's valid range, configuration `min` and `max` (°C, default -40 and 125).
// A reading outside the range is a sensor fault, not a temperature: dropping it keeps averages and alerts honest.

function keep(body) {
  const value = Number(body.value);
  if (Number.isNaN(value)) throw new Reject("reading has no numeric 'value'");
  return value >= Number(config.min ?? -40) && value <= Number(config.max ?? 125);
}

export const filter = {
  process(input) {
    return guard(() => keep(JSON.parse(payloadText(input))));
  },
};

// Helpers: payloads as text whichever case they travelled in, Reject -> operator error, configuration.
class Reject extends Error {}
const config = {};

function payloadText(msg) {
  return msg.payload.tag === "text" ? msg.payload.val : new TextDecoder().decode(msg.payload.val);
}

function withPayload(msg, text) {
  return { ...msg, payload: { tag: "text", val: text }, contentType: "application/json" };
}

function guard(fn) {
  try {
    return fn();
  } catch (e) {
    throw { message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}

export const lifecycle = {
  init(configuration) {
    for (const [key, value] of configuration.properties) config[key] = value;
  },
};
