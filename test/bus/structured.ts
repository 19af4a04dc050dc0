/** Random values the bus codec carries (JSON-like data and Uint8Arrays), for property tests. */
import fc from "fast-check";
import type { Structured } from "../../src/bus/index.ts";

/** Any `Structured` value but undefined (which JSON does not keep), nested a little. */
export const structured: fc.Arbitrary<Structured> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
    fc.string({ unit: "binary" }),
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(
      fc.string().filter((k) => k !== "__proto__"),
      tie("value"),
      { maxKeys: 5 },
    ),
  ),
})).value as fc.Arbitrary<Structured>;
