// Business rules for a map, with no SDK (wasmflow:map-rules), in JavaScript: the same rules as the Python ones
// (tests/components/rules/scale_map_py), saying "js" instead.
let factor = 1.0;

export const rules = {
  init(properties) {
    for (const [key, value] of properties) {
      if (key === "factor") {
        factor = Number(value);
        if (Number.isNaN(factor)) throw `factor must be a number, got ${value}`;
      }
    }
  },
  process(input) {
    const text = input.payload.tag === "text" ? input.payload.val : new TextDecoder().decode(input.payload.val);
    let value;
    try {
      value = Number(JSON.parse(text).value);
    } catch (e) {
      throw `not a reading: ${e}`;
    }
    return { ...input, payload: { tag: "text", val: JSON.stringify({ value: value * factor, by: "js" }) } };
  },
};
