/** STUN codec: the RFC 5769 vectors, refusals of malformed input, properties, and the fuzz targets. */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { SocketAddr } from "../../src/io/addr.ts";
import {
  buildStun,
  checkIntegrity,
  isStun,
  longTermKey,
  parseStun,
  STUN_BINDING,
  StunAttr,
  type StunAttributeInit,
  type StunMessage,
  shortTermKey,
} from "../../src/webrtc/stun.ts";
import { runFuzz } from "./fuzz.ts";
import { targets } from "./fuzz-targets/stun.ts";
import {
  LONG_TERM,
  REQUEST,
  REQUEST_LONG_TERM,
  RESPONSE_IPV4,
  RESPONSE_IPV6,
  SAMPLE_PASSWORD,
  SAMPLE_TRANSACTION_ID,
} from "./stun-vectors.ts";

function parsed(datagram: Uint8Array): StunMessage {
  const r = parseStun(datagram);
  if (!r.ok) throw new Error(`refused: ${r.reason} ${r.detail ?? ""}`);
  return r.value;
}

function reason(datagram: Uint8Array): string | undefined {
  const r = parseStun(datagram);
  return r.ok ? undefined : r.reason;
}

const sampleKey = shortTermKey(SAMPLE_PASSWORD);
const mapped = (address: string) => SocketAddr.parse(address, 32853);

describe("RFC 5769 vectors", () => {
  test("2.1 sample request: fields, integrity, fingerprint, rebuilt byte for byte", () => {
    const m = parsed(REQUEST);
    expect(m.cls).toBe("request");
    expect(m.method).toBe(STUN_BINDING);
    expect([...m.transactionId]).toEqual([...SAMPLE_TRANSACTION_ID]);
    expect(m.software).toBe("STUN test client");
    expect(m.priority).toBe(0x6e0001ff);
    expect(m.iceControlled).toBe(0x932ff9b151263b36n);
    expect(m.iceControlling).toBeUndefined();
    expect(m.username).toBe("evtj:h6vY");
    expect(m.hasFingerprint).toBe(true);
    expect(m.unknownRequired).toEqual([]);
    expect(checkIntegrity(m, sampleKey).ok).toBe(true);
    expect(checkIntegrity(m, shortTermKey("wrong"))).toEqual({
      ok: false,
      reason: "stun-bad-integrity",
    });
    const attributes: StunAttributeInit[] = [
      { type: "software", value: "STUN test client" },
      { type: "priority", value: 0x6e0001ff },
      { type: "ice-controlled", value: 0x932ff9b151263b36n },
      { type: "username", value: "evtj:h6vY" },
    ];
    const init = { cls: "request", transactionId: SAMPLE_TRANSACTION_ID, attributes } as const;
    // the vector pads USERNAME with spaces: the same padding gives the same bytes
    const options = { integrity: sampleKey, fingerprint: true, padding: 0x20 };
    expect(Buffer.from(buildStun(init, options)).toString("hex")).toBe(
      Buffer.from(REQUEST).toString("hex"),
    );
    // zero padding (RFC 8489) changes the MAC and the CRC, and still verifies
    const zero = buildStun(init, { integrity: sampleKey, fingerprint: true });
    expect(zero.length).toBe(REQUEST.length);
    expect(Buffer.compare(zero, REQUEST)).not.toBe(0);
    expect(checkIntegrity(parsed(zero), sampleKey).ok).toBe(true);
  });

  /** Checks response vector `vector` carries `address`:32853 and is rebuilt byte for byte. */
  function responseVector(vector: Uint8Array, address: string, shown: string): void {
    const m = parsed(vector);
    expect(m.cls).toBe("success");
    expect(m.software).toBe("test vector");
    expect(m.xorMappedAddress?.toString()).toBe(shown);
    expect(checkIntegrity(m, sampleKey).ok).toBe(true);
    const rebuilt = buildStun(
      {
        cls: "success",
        transactionId: SAMPLE_TRANSACTION_ID,
        attributes: [
          { type: "software", value: "test vector" },
          { type: "xor-mapped-address", value: mapped(address) },
        ],
      },
      { integrity: sampleKey, fingerprint: true, padding: 0x20 },
    );
    expect(Buffer.from(rebuilt).toString("hex")).toBe(Buffer.from(vector).toString("hex"));
  }

  test("2.2 IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853, rebuilt byte for byte", () => {
    responseVector(RESPONSE_IPV4, "192.0.2.1", "192.0.2.1:32853");
  });

  test("2.3 IPv6 response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853, rebuilt byte for byte", () => {
    const v6 = "2001:db8:1234:5678:11:2233:4455:6677";
    responseVector(RESPONSE_IPV6, v6, `[${v6}]:32853`);
  });

  test("2.4 long-term authentication: MD5(username:realm:password) key, rebuilt byte for byte", () => {
    const m = parsed(REQUEST_LONG_TERM);
    expect(m.cls).toBe("request");
    expect(m.username).toBe(LONG_TERM.username);
    expect(m.nonce).toBe(LONG_TERM.nonce);
    expect(m.realm).toBe(LONG_TERM.realm);
    expect(m.hasFingerprint).toBe(false);
    const key = longTermKey(LONG_TERM.username, LONG_TERM.realm, LONG_TERM.password);
    expect(checkIntegrity(m, key).ok).toBe(true);
    expect(checkIntegrity(m, shortTermKey(LONG_TERM.password)).ok).toBe(false);
    const rebuilt = buildStun(
      {
        cls: "request",
        transactionId: LONG_TERM.transactionId,
        attributes: [
          { type: "username", value: LONG_TERM.username },
          { type: "nonce", value: LONG_TERM.nonce },
          { type: "realm", value: LONG_TERM.realm },
        ],
      },
      { integrity: key },
    );
    expect(Buffer.from(rebuilt).toString("hex")).toBe(
      Buffer.from(REQUEST_LONG_TERM).toString("hex"),
    );
  });
});

/** A copy of `bytes` with `edit` applied. */
function edited(bytes: Uint8Array, edit: (b: Uint8Array) => void): Uint8Array {
  const copy = bytes.slice();
  edit(copy);
  return copy;
}

/** A Binding request with `attributes`, no MESSAGE-INTEGRITY. */
function request(attributes: StunAttributeInit[], fingerprint = false): Uint8Array {
  return buildStun(
    { cls: "request", transactionId: new Uint8Array(12).fill(7), attributes },
    { fingerprint },
  );
}

describe("refusals", () => {
  test("short, bad header bits, bad cookie, bad length", () => {
    expect(reason(new Uint8Array(0))).toBe("stun-short");
    expect(reason(REQUEST.subarray(0, 19))).toBe("stun-short");
    expect(reason(edited(REQUEST, (b) => (b[0] = 0x40)))).toBe("stun-bad-header");
    expect(reason(edited(REQUEST, (b) => (b[0] = 0x80)))).toBe("stun-bad-header");
    expect(reason(edited(REQUEST, (b) => (b[4] = 0x21 ^ 1)))).toBe("stun-bad-cookie");
    expect(reason(edited(REQUEST, (b) => (b[3] = 0x59)))).toBe("stun-bad-length");
    expect(reason(edited(REQUEST, (b) => (b[3] = 0x5c)))).toBe("stun-bad-length");
    expect(reason(REQUEST.subarray(0, REQUEST.length - 4))).toBe("stun-bad-length");
    const longer = new Uint8Array(REQUEST.length + 4);
    longer.set(REQUEST);
    expect(reason(longer)).toBe("stun-bad-length");
  });

  test("attributes: overrun, bad known values, something after FINGERPRINT", () => {
    // USERNAME (header at 60) claims 96 bytes: more than the message holds
    expect(reason(edited(REQUEST, (b) => (b[63] = 0x60)))).toBe("stun-bad-attribute");
    const bad = [
      { type: "raw", code: StunAttr.PRIORITY, value: new Uint8Array(3) },
      { type: "raw", code: StunAttr.USE_CANDIDATE, value: new Uint8Array(1) },
      { type: "raw", code: StunAttr.ICE_CONTROLLING, value: new Uint8Array(4) },
      { type: "raw", code: StunAttr.XOR_MAPPED_ADDRESS, value: new Uint8Array([0, 1, 0, 0]) },
      { type: "raw", code: StunAttr.MAPPED_ADDRESS, value: new Uint8Array(20).fill(1, 1, 2) },
      { type: "raw", code: StunAttr.ERROR_CODE, value: new Uint8Array([0, 0, 2, 0]) },
      { type: "raw", code: StunAttr.ERROR_CODE, value: new Uint8Array([0, 0, 4, 100]) },
      { type: "raw", code: StunAttr.UNKNOWN_ATTRIBUTES, value: new Uint8Array(3) },
      { type: "raw", code: StunAttr.MESSAGE_INTEGRITY, value: new Uint8Array(16) },
      { type: "raw", code: StunAttr.USERNAME, value: new Uint8Array(513) },
      { type: "raw", code: StunAttr.SOFTWARE, value: new Uint8Array(764) },
    ] as const;
    for (const a of bad) expect(reason(request([a]))).toBe("stun-bad-attribute");
    const trailing = request([{ type: "priority", value: 1 }], true);
    const after = new Uint8Array(trailing.length + 8);
    after.set(trailing);
    after.set([0, 0x24, 0, 4], trailing.length);
    after[3] = (after[3] as number) + 8;
    expect(reason(after)).toBe("stun-bad-attribute");
  });

  test("a changed FINGERPRINT or any byte before it is caught", () => {
    expect(
      reason(edited(REQUEST, (b) => (b[b.length - 1] = (b[b.length - 1] as number) ^ 1))),
    ).toBe("stun-bad-fingerprint");
    // the ICE-CONTROLLED value is not under any other check
    expect(reason(edited(REQUEST, (b) => (b[52] = (b[52] as number) ^ 0x80)))).toBe(
      "stun-bad-fingerprint",
    );
  });

  test("unknown comprehension-required types are reported, optional ones (GOOG-NETWORK-INFO) ignored", () => {
    const m = parsed(
      request([
        { type: "raw", code: 0xc057, value: new Uint8Array([0, 1, 0, 10]) },
        { type: "raw", code: 0x0031, value: new Uint8Array(5) },
        { type: "raw", code: 0x7fff, value: new Uint8Array(0) },
      ]),
    );
    expect(m.unknownRequired).toEqual([0x0031, 0x7fff]);
    expect([...(m.get(0xc057) ?? [])]).toEqual([0, 1, 0, 10]);
    expect(m.attributes.map((a) => a.type)).toEqual([0xc057, 0x0031, 0x7fff]);
  });

  test("attributes after MESSAGE-INTEGRITY, other than FINGERPRINT, are ignored", () => {
    const signed = buildStun(
      {
        cls: "request",
        transactionId: new Uint8Array(12),
        attributes: [{ type: "username", value: "a:b" }],
      },
      { integrity: sampleKey },
    );
    const extended = new Uint8Array(signed.length + 8);
    extended.set(signed);
    extended.set([0x00, 0x31, 0, 4, 1, 2, 3, 4], signed.length);
    extended[3] = (extended[3] as number) + 8;
    const m = parsed(extended);
    expect(m.unknownRequired).toEqual([]);
    expect(m.get(0x0031)).toBeUndefined();
    expect(checkIntegrity(m, sampleKey).ok).toBe(true);
    expect(checkIntegrity(parsed(request([])), sampleKey)).toEqual({
      ok: false,
      reason: "stun-no-integrity",
    });
  });

  test("class and method bits; isStun demultiplexes by the first byte (RFC 7983)", () => {
    for (const cls of ["request", "indication", "success", "error"] as const) {
      for (const method of [0x001, 0x003, 0x0a5, 0xfff]) {
        const m = parsed(buildStun({ cls, method, transactionId: new Uint8Array(12) }));
        expect([m.cls, m.method]).toEqual([cls, method]);
      }
    }
    expect([0, 1, 2, 3].every(isStun)).toBe(true);
    expect([4, 20, 63, 64, 128, 191, 255].some(isStun)).toBe(false);
  });

  test("the builder refuses what it cannot encode", () => {
    const init = { cls: "request", transactionId: new Uint8Array(12) } as const;
    expect(() => buildStun({ ...init, transactionId: new Uint8Array(11) })).toThrow(RangeError);
    expect(() => buildStun({ ...init, method: 0x1000 })).toThrow(RangeError);
    const bad: StunAttributeInit[] = [
      { type: "error-code", value: { code: 700, reason: "" } },
      { type: "priority", value: 2 ** 32 },
      { type: "ice-controlling", value: 1n << 64n },
      { type: "username", value: "x".repeat(513) },
      { type: "unknown-attributes", value: [0x10000] },
    ];
    for (const a of bad) expect(() => buildStun({ ...init, attributes: [a] })).toThrow(RangeError);
  });
});

const text = (maxLength: number) => fc.string({ unit: "grapheme", maxLength });
const address = fc.oneof(
  fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.nat(65535)),
  fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat(65535)),
);
const known = new Set<number>(Object.values(StunAttr));
const attribute: fc.Arbitrary<StunAttributeInit> = fc.oneof(
  fc.record({ type: fc.constantFrom("username", "software", "realm", "nonce"), value: text(30) }),
  fc.record({
    type: fc.constantFrom("mapped-address", "xor-mapped-address"),
    value: address.map(([ip, port]) => SocketAddr.fromIp(ip, port)),
  }),
  fc.record({
    type: fc.constant("error-code"),
    value: fc.record({ code: fc.integer({ min: 300, max: 699 }), reason: text(20) }),
  }),
  fc.record({
    type: fc.constant("unknown-attributes"),
    value: fc.array(fc.nat(0xffff), { maxLength: 6 }),
  }),
  fc.record({ type: fc.constant("priority"), value: fc.nat(0xffffffff) }),
  fc.record({ type: fc.constant("use-candidate") }),
  fc.record({
    type: fc.constantFrom("ice-controlled", "ice-controlling"),
    value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  }),
  fc.record({
    type: fc.constant("raw"),
    code: fc.nat(0xffff).filter((c) => !known.has(c)),
    value: fc.uint8Array({ maxLength: 40 }),
  }),
);

/** The name a non-raw attribute is read back with. */
function read(m: StunMessage, a: Exclude<StunAttributeInit, { type: "raw" }>): unknown {
  switch (a.type) {
    case "username":
      return m.username;
    case "software":
      return m.software;
    case "realm":
      return m.realm;
    case "nonce":
      return m.nonce;
    case "mapped-address":
      return m.mappedAddress?.toString();
    case "xor-mapped-address":
      return m.xorMappedAddress?.toString();
    case "error-code":
      return m.errorCode;
    case "unknown-attributes":
      return m.unknownAttributes;
    case "priority":
      return m.priority;
    case "use-candidate":
      return m.useCandidate;
    case "ice-controlled":
      return m.iceControlled;
    case "ice-controlling":
      return m.iceControlling;
  }
}

function expected(a: Exclude<StunAttributeInit, { type: "raw" }>): unknown {
  if (a.type === "use-candidate") return true;
  if (a.type === "mapped-address" || a.type === "xor-mapped-address") return a.value.toString();
  return a.value;
}

describe("properties", () => {
  test("build → parse gives back every attribute, in order, and the integrity checks", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(attribute, {
          maxLength: 12,
          selector: (a) => (a.type === "raw" ? a.code : a.type),
        }),
        fc.constantFrom("request", "indication", "success", "error" as const),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }), { nil: undefined }),
        fc.boolean(),
        fc.nat(255),
        (attributes, cls, transactionId, key, fingerprint, padding) => {
          const options =
            key === undefined ? { fingerprint, padding } : { integrity: key, fingerprint, padding };
          const m = parsed(buildStun({ cls, transactionId, attributes }, options));
          expect([m.cls, m.method, [...m.transactionId]]).toEqual([
            cls,
            STUN_BINDING,
            [...transactionId],
          ]);
          for (const a of attributes) {
            if (a.type === "raw") {
              const v = m.get(a.code);
              expect(v === undefined ? undefined : [...v]).toEqual([...a.value]);
            } else expect(read(m, a)).toEqual(expected(a));
          }
          const codes = attributes.flatMap((a) => (a.type === "raw" ? [a.code] : []));
          expect(m.unknownRequired).toEqual(codes.filter((c) => c < 0x8000));
          expect(m.hasFingerprint).toBe(fingerprint);
          const expectedCount =
            attributes.length + (key === undefined ? 0 : 1) + (fingerprint ? 1 : 0);
          expect(m.attributes.length).toBe(expectedCount);
          if (key !== undefined) expect(checkIntegrity(m, key).ok).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });

  test("a change to any one byte covered by MESSAGE-INTEGRITY fails the parse or the integrity check", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(attribute, {
          maxLength: 6,
          selector: (a) => (a.type === "raw" ? a.code : a.type),
        }),
        fc.uint8Array({ minLength: 1, maxLength: 32 }),
        fc.boolean(),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (attributes, key, fingerprint, where, delta) => {
          const bytes = buildStun(
            { cls: "request", transactionId: new Uint8Array(12).fill(3), attributes },
            { integrity: key, fingerprint },
          );
          // MESSAGE-INTEGRITY ends the message, or comes just before the 8 bytes of FINGERPRINT
          const covered = bytes.length - (fingerprint ? 8 : 0);
          const at = where % covered;
          const changed = edited(bytes, (b) => (b[at] = (b[at] as number) ^ delta));
          const r = parseStun(changed);
          expect(r.ok && checkIntegrity(r.value, key).ok).toBe(false);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("fuzz", () => {
  for (const target of targets) {
    test(`${target.name}: 20,000 inputs, seed 1, no throw, every refusal has a reason`, () => {
      const report = runFuzz(target, 20_000, 1);
      const refused = Object.values(report.rejected).reduce((a, b) => a + b, 0);
      expect(report.accepted + refused).toBe(20_000);
      expect(refused).toBeGreaterThan(0);
      expect(report.accepted).toBeGreaterThan(0);
      for (const [why, n] of Object.entries(report.rejected)) {
        expect(why).toMatch(/^(stun|ice)-[a-z-]+$/);
        expect(n).toBeGreaterThan(0);
      }
    }, 30_000);
  }
});
