// enrich: adds plant context to each reading from the node's configuration (`site`, `line`) and the asset id from
// the topic (sensors/<asset>/temperature), so downstream consumers need no lookup table.

function transform(body, topic) {
  const parts = topic.split("/");
  body.asset = parts.length >= 2 ? parts[1] : "unknown";
  body.site = config.site ?? "unknown-site";
  body.line = config.line ?? "unknown-line";
  return body;
}

export const map = {
  process(input) {
    return guard(() => withPayload(input, JSON.stringify(transform(JSON.parse(payloadText(input)), input.topic))));
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
