/**
 * The ping responder's packet logic against a reference model written plainly here: checksums,
 * the verdict for valid, mutated and random packets, the reply's fields, ARP in TAP mode.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  adjustChecksum,
  internetChecksum,
  macFor,
  onesSum,
  PingResponder,
  parseSubnet,
  type Verdict,
} from "../../examples/ping-responder.ts";

/** One's complement sum the textbook way: add 16-bit words with end-around carry, one at a time. */
function refSum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) {
    const word = ((b[i] as number) << 8) | (i + 1 < b.length ? (b[i + 1] as number) : 0);
    s += word;
    if (s > 0xffff) s -= 0xffff;
  }
  return s;
}

const SUBNET = { base: [10, 77, 0], self: 1 }; // 10.77.0.1/24

/** The reference classifier: what a careful reader of RFC 791/792 would do, in that order. */
function refVerdict(p: Uint8Array): Verdict {
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  if (p.length === 0) return "truncated";
  const version = (p[0] as number) >> 4;
  if (version === 6) return "ignored";
  if (version !== 4) return "bad-version";
  if (p.length < 20) return "truncated";
  const ihl = ((p[0] as number) & 15) * 4;
  const total = v.getUint16(2);
  if (ihl < 20 || total < ihl) return "bad-length";
  if (p.length < ihl) return "truncated";
  if (total > p.length) return "bad-length";
  if (refSum(p.subarray(0, ihl)) !== 0xffff) return "bad-checksum";
  if ((v.getUint16(6) & 0x1fff) !== 0 || (v.getUint16(6) & 0x2000) !== 0) return "fragment";
  if (p[9] !== 1) return "ignored";
  const [a, b, c, d] = [p[16], p[17], p[18], p[19]];
  const inSubnet = a === 10 && b === 77 && c === 0 && d !== 0 && d !== 255 && d !== SUBNET.self;
  if (!inSubnet) return "not-for-us";
  if (total - ihl < 8) return "truncated";
  if (refSum(p.subarray(ihl, total)) !== 0xffff) return "bad-checksum";
  if (p[ihl] !== 8 || p[ihl + 1] !== 0) return "ignored";
  return "echo-reply";
}

/** A valid echo request to 10.77.0.`host` with `options` bytes of IP options and `data`. */
function request(host: number, id: number, seq: number, data: Uint8Array, options = 0): Uint8Array {
  const ihl = 20 + options;
  const p = new Uint8Array(ihl + 8 + data.length);
  const v = new DataView(p.buffer);
  p[0] = 0x40 | (ihl / 4);
  v.setUint16(2, p.length);
  v.setUint16(4, id ^ 0x5555);
  p[8] = 17;
  p[9] = 1;
  p.set([10, 77, 0, 1, 10, 77, 0, host], 12);
  p.fill(1, 20, ihl); // NOP options
  v.setUint16(10, internetChecksum(p, 0, ihl));
  p[ihl] = 8;
  v.setUint16(ihl + 4, id);
  v.setUint16(ihl + 6, seq);
  p.set(data, ihl + 8);
  v.setUint16(ihl + 2, internetChecksum(p, ihl, p.length));
  return p;
}

const arbRequest = fc
  .record({
    host: fc.integer({ min: 2, max: 254 }),
    id: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })),
    seq: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })),
    data: fc.oneof(
      fc.uint8Array({ maxLength: 1400 }),
      fc.nat(64).map((n) => new Uint8Array(n)),
    ),
    options: fc.integer({ min: 0, max: 10 }).map((n) => n * 4),
  })
  .map((r) => request(r.host, r.id, r.seq, r.data, r.options));

describe("checksums", () => {
  test("onesSum matches the word-by-word reference, any bytes, any split", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(), (b, cut) => {
        const sum = onesSum(b, 0, b.length);
        expect(sum).toBe(refSum(b));
        const at = (cut % (b.length + 1)) & ~1; // an even split point
        expect(onesSum(b, at, b.length, onesSum(b, 0, at))).toBe(sum);
      }),
    );
  });

  test("onesSum is the same at any offset in a larger buffer (aligned or not)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(7), fc.nat(), (b, offset, sum) => {
        const big = new Uint8Array(offset + b.length + 5);
        big.set(b, offset);
        const view = big.subarray(offset, offset + b.length);
        const initial = sum % 0x10000;
        expect(onesSum(view, 0, b.length, initial)).toBe(onesSum(b, 0, b.length, initial));
        expect(onesSum(view, 0, b.length)).toBe(refSum(b));
      }),
    );
  });

  test("a buffer carrying its own internetChecksum sums to 0xffff", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 2, maxLength: 200 }), (raw) => {
        const b = raw.length % 2 === 0 ? raw : raw.subarray(0, raw.length - 1);
        b[0] = 0;
        b[1] = 0;
        const c = internetChecksum(b, 0, b.length);
        b[0] = c >> 8;
        b[1] = c & 0xff;
        expect(onesSum(b, 0, b.length)).toBe(0xffff);
      }),
    );
  });

  test("adjustChecksum keeps a checksum valid when one word changes (RFC 1624), or says 0 to sum again", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 200 }),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffff }),
        (raw, which, to) => {
          const b = raw.subarray(0, raw.length & ~1);
          b[0] = 0;
          b[1] = 0;
          const c = internetChecksum(b, 0, b.length);
          b[0] = c >> 8;
          b[1] = c & 0xff;
          const at = 2 + 2 * (which % (b.length / 2 - 1));
          const from = ((b[at] as number) << 8) | (b[at + 1] as number);
          b[at] = to >> 8;
          b[at + 1] = to & 0xff;
          const adjusted = adjustChecksum(c, from, to);
          b[0] = adjusted >> 8;
          b[1] = adjusted & 0xff;
          if (adjusted !== 0) expect(onesSum(b, 0, b.length)).toBe(0xffff);
          else expect(refSum(b.subarray(2))).toBe(b.subarray(2).some((x) => x !== 0) ? 0xffff : 0);
        },
      ),
    );
  });
});

describe("PingResponder (TUN)", () => {
  const responder = new PingResponder("10.77.0.1/24");

  test("every valid request becomes a valid reply with the same identifier, sequence and data", () => {
    fc.assert(
      fc.property(arbRequest, (req) => {
        const p = req.slice();
        expect(responder.answer(p)).toBe("echo-reply");
        const ihl = ((p[0] as number) & 15) * 4;
        expect(refSum(p.subarray(0, ihl))).toBe(0xffff);
        expect(refSum(p.subarray(ihl))).toBe(0xffff);
        expect([...p.subarray(12, 16)]).toEqual([...req.subarray(16, 20)]);
        expect([...p.subarray(16, 20)]).toEqual([...req.subarray(12, 16)]);
        expect(p[8]).toBe(64);
        expect(p[ihl]).toBe(0);
        expect([...p.subarray(ihl + 4)]).toEqual([...req.subarray(ihl + 4)]);
        expect([...p.subarray(0, 8)]).toEqual([...req.subarray(0, 8)]);
      }),
    );
  });

  test("mutated requests: the verdict is the reference's, and only replies change the bytes", () => {
    // edits anywhere; half the time the header checksum is then fixed, so that the checks past
    // it (fragments, protocol, addresses, ICMP) see mutated fields too
    const mutated = fc
      .tuple(
        arbRequest,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.boolean(),
        fc.nat(),
      )
      .map(([req, edits, fix, cut]) => {
        const p = req.slice();
        const ihl = ((p[0] as number) & 15) * 4;
        for (const [at, value] of edits) p[fix ? at % ihl : at % p.length] = value;
        if (fix && ((p[0] as number) & 15) * 4 === ihl) {
          p[10] = 0;
          p[11] = 0;
          const c = internetChecksum(p, 0, ihl);
          p[10] = c >> 8;
          p[11] = c & 0xff;
        }
        return cut % 4 === 0 ? p.slice(0, cut % (p.length + 1)) : p;
      });
    fc.assert(
      fc.property(mutated, (p) => {
        const before = p.slice();
        const verdict = responder.answer(p);
        expect(verdict).toBe(refVerdict(before));
        if (verdict !== "echo-reply") expect(p).toEqual(before);
      }),
      { numRuns: 2000 },
    );
  });

  test("random bytes never throw and get the reference's verdict", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (p) => {
        const before = p.slice();
        expect(responder.answer(p)).toBe(refVerdict(before));
      }),
      { numRuns: 5000 },
    );
  });

  test("fragments get no answer (no reassembly); don't-fragment alone is fine", () => {
    for (const [flags, verdict] of [
      [0x2000, "fragment"], // more fragments
      [0x0001, "fragment"], // an offset
      [0x4000, "echo-reply"], // DF
    ] as const) {
      const p = request(9, 1, 1, new Uint8Array(8));
      new DataView(p.buffer).setUint16(6, flags);
      p[10] = 0;
      p[11] = 0;
      new DataView(p.buffer).setUint16(10, internetChecksum(p, 0, 20));
      expect(responder.answer(p)).toBe(verdict);
    }
  });

  test("the kernel's own address, the network and the broadcast address are not answered", () => {
    for (const host of [0, 1, 255]) {
      expect(responder.answer(request(host, 1, 1, new Uint8Array(8)))).toBe("not-for-us");
    }
  });
});

describe("PingResponder (TAP)", () => {
  const responder = new PingResponder("10.77.0.1/24", "tap");
  const requester = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

  function arpRequest(target: number): Uint8Array {
    const f = new Uint8Array(42);
    f.fill(0xff, 0, 6);
    f.set(requester, 6);
    f.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 12);
    f.set(requester, 22);
    f.set([10, 77, 0, 1], 28);
    f.set([10, 77, 0, target], 38);
    return f;
  }

  test("an ARP request for a host of the subnet gets a reply with that host's MAC", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 254 }), (host) => {
        const f = arpRequest(host);
        expect(responder.answer(f)).toBe("arp-reply");
        const mac = [...macFor(10 * 2 ** 24 + 77 * 2 ** 16 + host)];
        expect([...f.subarray(0, 6)]).toEqual(requester);
        expect([...f.subarray(6, 12)]).toEqual(mac);
        expect([...f.subarray(20, 22)]).toEqual([0, 2]);
        expect([...f.subarray(22, 28)]).toEqual(mac);
        expect([...f.subarray(28, 32)]).toEqual([10, 77, 0, host]);
        expect([...f.subarray(32, 38)]).toEqual(requester);
        expect([...f.subarray(38, 42)]).toEqual([10, 77, 0, 1]);
      }),
    );
  });

  test("ARP for the kernel's address or outside the subnet, and short frames, get no answer", () => {
    expect(responder.answer(arpRequest(1))).toBe("not-for-us");
    expect(responder.answer(arpRequest(255))).toBe("not-for-us");
    expect(responder.answer(arpRequest(5).subarray(0, 30))).toBe("truncated");
    expect(responder.answer(new Uint8Array(10))).toBe("truncated");
  });

  test("an echo request in an Ethernet frame comes back to the sender's MAC", () => {
    fc.assert(
      fc.property(arbRequest, (req) => {
        const f = new Uint8Array(14 + req.length);
        f.set([2, 0, 10, 77, 0, req[19] as number], 0);
        f.set(requester, 6);
        f.set([0x08, 0x00], 12);
        f.set(req, 14);
        expect(responder.answer(f)).toBe("echo-reply");
        expect([...f.subarray(0, 6)]).toEqual(requester);
        expect([...f.subarray(6, 12)]).toEqual([2, 0, 10, 77, 0, req[19] as number]);
        expect(refSum(f.subarray(14 + ((f[14] as number) & 15) * 4))).toBe(0xffff);
      }),
    );
  });
});

test("parseSubnet refuses what is not a host address with a usable prefix", () => {
  expect(parseSubnet("10.77.0.1/24")).toEqual({
    self: 0x0a4d0001,
    network: 0x0a4d0000,
    broadcast: 0x0a4d00ff,
    prefix: 24,
  });
  for (const bad of [
    "10.77.0.1",
    "10.77.0.0/24",
    "10.77.0.255/24",
    "10.77.0.1/31",
    "10.77.0.300/24",
    "x/24",
  ]) {
    expect(() => parseSubnet(bad)).toThrow(RangeError);
  }
});
