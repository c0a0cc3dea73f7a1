// map: echoes every message; a text payload "fetch <url>" first calls fetch(url), as a JavaScript operator that
// reaches for the network would. Whether that works is the host's grant (`http`), never this operator's choice.
// The answer carries the property "fetch" = "started" when fetch() returned a promise.

function textOf(payload) {
  return payload.tag === "text" ? payload.val : new TextDecoder().decode(payload.val);
}

export const lifecycle = {
  init(_config) {},
};

export const map = {
  process(input) {
    const text = textOf(input.payload);
    const properties = [...input.properties];
    if (text.startsWith("fetch ")) {
      const pending = fetch(text.slice("fetch ".length));
      pending.catch(() => {});
      properties.push(["fetch", "started"]);
    }
    return {
      payload: input.payload,
      topic: input.topic,
      contentType: input.contentType,
      properties,
      timestampMs: input.timestampMs,
    };
  },
};
