/**
 * Picks the bus's default codec by measurement: encode + decode round trips of typical control
 * messages with the tagged binary codec, JSON, and bun:jsc's structured clone.
 *
 *   bun bench/codec.ts [--quick]
 */
import { deserialize, serialize } from "bun:jsc";
import { type Codec, JsonBytesCodec, type Structured } from "../src/bus/index.ts";
import { JsonCodec, TaggedCodec } from "./lib/codec-candidates.ts";
import { finish, fmt, interleavedMedians, quick, type Result } from "./lib/report.ts";

const jsc: Codec<Structured> = {
  encode: (v) => new Uint8Array(serialize(v)),
  decode: (b) => deserialize(b.slice().buffer) as Structured,
};

const messages: Record<string, Structured> = {
  "small object": { type: "join", room: 12, user: "alice", admin: false },
  "stats object": {
    worker: 3,
    tasks: 1200,
    utilisation: 0.4375,
    eventsIn: 125_000,
    eventsOut: 124_800,
    rings: [0.1, 0.02, 0.3, 0.0],
    lastError: null,
  },
  "object + 1 KiB bytes": { type: "media", ssrc: 0x1234567, payload: new Uint8Array(1024).fill(7) },
};

const codecs: [string, Codec<Structured>][] = [
  ["tagged", new TaggedCodec()],
  ["json", new JsonCodec()],
  ["json+bytes", new JsonBytesCodec()],
  ["bun:jsc", jsc],
];

const ops = quick ? 100_000 : 500_000;
const runs = quick ? 3 : 5;
const results: Result[] = [];
const ratios: Record<string, number> = {};
console.log(`codec bench: encode + decode, median of ${runs} runs x ${ops}`);
console.log(`message                ${codecs.map(([n]) => `${n} ns/op`.padStart(16)).join("")}`);
for (const [label, message] of Object.entries(messages)) {
  let sink = 0;
  const bodies = codecs.map(([, codec]) => (n: number) => {
    for (let i = 0; i < n; i++) {
      const back = codec.decode(codec.encode(message));
      if (back === null) sink++;
    }
  });
  // plain JSON spells a byte array out as an object of 1024 keys: keep that case short
  const count =
    message !== null && typeof message === "object" && "payload" in message ? ops / 50 : ops;
  const timings = interleavedMedians(runs, count, bodies);
  if (sink < 0) console.log(sink);
  console.log(
    `${label.padEnd(22)} ${timings.map((t) => fmt(t.wallNsPerOp).padStart(16)).join("")}`,
  );
  codecs.forEach(([name], i) => {
    results.push({ name: `${name} ${label}`, value: timings[i]?.wallNsPerOp ?? 0, unit: "ns/op" });
  });
  const tagged = timings[0]?.wallNsPerOp ?? 0;
  ratios[`json / tagged, ${label}`] = (timings[1]?.wallNsPerOp ?? 0) / tagged;
  ratios[`json+bytes / tagged, ${label}`] = (timings[2]?.wallNsPerOp ?? 0) / tagged;
  ratios[`bun:jsc / tagged, ${label}`] = (timings[3]?.wallNsPerOp ?? 0) / tagged;
}
finish("codec", results, ratios);
