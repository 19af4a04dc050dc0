/**
 * RTP views and builder: packets from libwebrtc's rtp_packet_unittest.cc (one-byte and two-byte
 * extensions, CSRCs, padding) read byte by byte and rebuilt byte for byte; a packet laid out by
 * hand from RFC 3550 §5.1 / RFC 8285; build→parse round trips against the values built from
 * (fast-check); in-place rewrites; werift-rtp reading what we build and we reading what it
 * builds; refusals and hostile input.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { RtpHeader, RtpPacket as WeriftPacket } from "werift-rtp";
import {
  isRtcpPayloadType,
  parseRtp,
  type RtpInit,
  type RtpPacket,
  rtpLength,
  writeRtp,
} from "../../src/webrtc/rtp.ts";
import { checkFuzz } from "./fuzz.ts";
import { targets } from "./fuzz-targets/rtp.ts";

const hex = (s: string) =>
  new Uint8Array(Buffer.from(s.replace(/#[^\n]*/g, "").replace(/\s+/g, ""), "hex"));
const ascii = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

function packet(bytes: Uint8Array): RtpPacket {
  const r = parseRtp(bytes);
  if (!r.ok) throw new Error(`refused: ${r.reason}`);
  return r.value;
}

function built(init: RtpInit): Uint8Array {
  const out = new Uint8Array(rtpLength(init));
  expect(writeRtp(init, out)).toBe(out.length);
  return out;
}

const exts = (p: RtpPacket) => [...p.extensions()].map((e) => [e.id, [...e.value]]);

// libwebrtc modules/rtp_rtcp/source/rtp_packet_unittest.cc: PT 100, seq 0x1234,
// timestamp 0x65431278, SSRC 0x12345678, transmission offset (id 1) 0x56ce, audio level (id 9)
// 0x80|0x5a, playout delay (two-byte id 0xf0) 00 30 22.
const LIBWEBRTC_PACKET = hex(`
  b2 64 1234 65431278 12345678
  34567890 32435465
  bede 0001 12 0056ce
  ${Buffer.from("payload").toString("hex")}
  ${Buffer.from("padding").toString("hex")} 08
`);
const LIBWEBRTC_TO_AND_AL = hex(`
  90 64 1234 65431278 12345678
  bede 0002 12 0056ce 90 da 00 00
`);
const LIBWEBRTC_TWO_BYTE_LAST = hex(`
  90 64 1234 65431278 12345678
  1000 0004 01 03 0056ce 09 01 da f0 03 003022 000000
`);

describe("RTP: published packets (libwebrtc's unit tests)", () => {
  test("CSRCs, a one-byte extension, payload and 8 bytes of padding: read, then rebuilt byte for byte", () => {
    const p = packet(LIBWEBRTC_PACKET);
    expect([p.version, p.padding, p.hasExtension, p.csrcCount, p.marker]).toEqual([
      2,
      true,
      true,
      2,
      false,
    ]);
    expect([p.payloadType, p.sequenceNumber, p.timestamp, p.ssrc]).toEqual([
      100, 0x1234, 0x65431278, 0x12345678,
    ]);
    expect(p.csrcs()).toEqual([0x34567890, 0x32435465]);
    expect([p.headerLength, p.payloadLength, p.paddingLength]).toEqual([28, 7, 8]);
    expect(p.extensionProfile).toBe(0xbede);
    expect(exts(p)).toEqual([[1, [0x00, 0x56, 0xce]]]);
    expect(Buffer.from(p.payload).toString()).toBe("payload");
    const rebuilt = built({
      payloadType: 100,
      sequenceNumber: 0x1234,
      timestamp: 0x65431278,
      ssrc: 0x12345678,
      csrcs: [0x34567890, 0x32435465],
      extensions: [{ id: 1, value: hex("0056ce") }],
      payload: ascii("payload"),
      paddingLength: 8,
    });
    // our padding is zeros then the count; libwebrtc's test fills it with "padding"
    expect([...rebuilt.subarray(0, 35)]).toEqual([...LIBWEBRTC_PACKET.subarray(0, 35)]);
    expect([...rebuilt.subarray(35)]).toEqual([0, 0, 0, 0, 0, 0, 0, 8]);
  });

  test("one-byte extensions with trailing padding bytes", () => {
    const p = packet(LIBWEBRTC_TO_AND_AL);
    expect(exts(p)).toEqual([
      [1, [0x00, 0x56, 0xce]],
      [9, [0xda]],
    ]);
    expect(p.payloadLength).toBe(0);
    const init = {
      payloadType: 100,
      sequenceNumber: 0x1234,
      timestamp: 0x65431278,
      ssrc: 0x12345678,
      payload: new Uint8Array(0),
    };
    const rebuilt = built({
      ...init,
      extensions: [
        { id: 1, value: hex("0056ce") },
        { id: 9, value: hex("da") },
      ],
    });
    expect([...rebuilt]).toEqual([...LIBWEBRTC_TO_AND_AL]);
  });

  test("the two-byte form (an id over 14 forces it), rebuilt byte for byte", () => {
    const p = packet(LIBWEBRTC_TWO_BYTE_LAST);
    expect(p.extensionProfile).toBe(0x1000);
    expect(exts(p)).toEqual([
      [1, [0x00, 0x56, 0xce]],
      [9, [0xda]],
      [0xf0, [0x00, 0x30, 0x22]],
    ]);
    const rebuilt = built({
      payloadType: 100,
      sequenceNumber: 0x1234,
      timestamp: 0x65431278,
      ssrc: 0x12345678,
      extensions: exts(p).map(([id, v]) => ({
        id: id as number,
        value: Uint8Array.from(v as number[]),
      })),
      payload: new Uint8Array(0),
    });
    expect([...rebuilt]).toEqual([...LIBWEBRTC_TWO_BYTE_LAST]);
  });
});

describe("RTP: laid out by hand", () => {
  test("fields, CSRCs, one-byte extensions with padding between, payload, padding; in-place rewrites", () => {
    const bytes = hex(`
      b2 e0 1234 00010000 deadbeef   # V=2 P X CC=2, M PT=96, seq, ts, ssrc
      00000001 00000002              # CSRCs
      bede 0002 10 aa 00 21 bbcc 00 00  # one-byte ext: id1 len1, a padding byte, id2 len2, padding
      0102 0304                      # payload
      00 00 03                       # 3 bytes of padding
    `);
    const v = packet(bytes);
    expect([v.padding, v.hasExtension, v.csrcCount, v.marker, v.payloadType]).toEqual([
      true,
      true,
      2,
      true,
      96,
    ]);
    expect([v.sequenceNumber, v.timestamp, v.ssrc]).toEqual([0x1234, 0x10000, 0xdeadbeef]);
    expect([v.csrc(0), v.csrc(1)]).toEqual([1, 2]);
    expect(exts(v)).toEqual([
      [1, [0xaa]],
      [2, [0xbb, 0xcc]],
    ]);
    expect([...(v.extension(2) ?? [])]).toEqual([0xbb, 0xcc]);
    expect(v.extension(3)).toBeUndefined();
    expect([...v.payload]).toEqual([1, 2, 3, 4]);
    // in-place rewrites an SFU makes
    v.ssrc = 0x01020304;
    v.sequenceNumber = 0x10000 + 7; // wraps to 16 bits
    v.timestamp = 2 ** 32 + 5;
    v.payloadType = 111;
    v.marker = false;
    expect(v.setExtension(2, Uint8Array.of(0x11, 0x22))).toBe(true);
    expect(v.setExtension(2, Uint8Array.of(0x11))).toBe(false); // another length: nothing written
    expect(v.setExtension(5, Uint8Array.of(0x11))).toBe(false); // absent
    const again = packet(bytes);
    expect([
      again.ssrc,
      again.sequenceNumber,
      again.timestamp,
      again.payloadType,
      again.marker,
    ]).toEqual([0x01020304, 7, 5, 111, false]);
    expect(exts(again)).toEqual([
      [1, [0xaa]],
      [2, [0x11, 0x22]],
    ]);
    expect([...again.payload]).toEqual([1, 2, 3, 4]);
  });

  test("RFC 8285 edge cases: id 15 ends one-byte parsing, an element past the block ends it, two-byte padding and empty values, other profiles give no elements", () => {
    const head = "90 60 0001 00000002 00000003";
    expect(exts(packet(hex(`${head} bede 0002 10 aa f0 bb 20 cccc 00`)))).toEqual([[1, [0xaa]]]);
    expect(exts(packet(hex(`${head} bede 0001 10 aa 2f bb`)))).toEqual([[1, [0xaa]]]);
    expect(exts(packet(hex(`${head} 1003 0002 00 05 00 06 02 bbcc 00`)))).toEqual([
      [5, []],
      [6, [0xbb, 0xcc]],
    ]);
    const other = packet(hex(`${head} abcd 0001 10 aa bb cc`));
    expect([other.extensionProfile, exts(other), other.headerLength]).toEqual([0xabcd, [], 20]);
  });
});

const extension = fc.record({
  id: fc.integer({ min: 1, max: 255 }),
  value: fc.uint8Array({ minLength: 0, maxLength: 40 }),
});
const init = fc.record(
  {
    payloadType: fc.integer({ min: 0, max: 127 }),
    sequenceNumber: fc.integer({ min: 0, max: 0xffff }),
    timestamp: fc.nat({ max: 0xffffffff }),
    ssrc: fc.nat({ max: 0xffffffff }),
    marker: fc.boolean(),
    csrcs: fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 15 }),
    extensions: fc.uniqueArray(extension, { maxLength: 6, selector: (e) => e.id }),
    payload: fc.uint8Array({ maxLength: 300 }),
    paddingLength: fc.integer({ min: 1, max: 255 }),
  },
  { requiredKeys: ["payloadType", "sequenceNumber", "timestamp", "ssrc", "payload"] },
);

describe("RTP: properties", () => {
  test("build → parse gives back every field built from, at any offset in the buffer", () => {
    fc.assert(
      fc.property(init, fc.nat({ max: 9 }), (i: RtpInit, at) => {
        const out = new Uint8Array(at + rtpLength(i) + 5);
        const n = writeRtp(i, out, at);
        expect(n).toBe(rtpLength(i));
        const v = packet(out.subarray(at, at + n));
        expect([v.payloadType, v.sequenceNumber, v.timestamp, v.ssrc, v.marker]).toEqual([
          i.payloadType,
          i.sequenceNumber,
          i.timestamp,
          i.ssrc,
          Boolean(i.marker),
        ]);
        expect(v.csrcs()).toEqual([...(i.csrcs ?? [])]);
        expect(exts(v)).toEqual((i.extensions ?? []).map((e) => [e.id, [...e.value]]));
        const oneByte = (i.extensions ?? []).every(
          (e) => e.id <= 14 && e.value.length >= 1 && e.value.length <= 16,
        );
        if ((i.extensions ?? []).length > 0)
          expect(v.extensionProfile).toBe(oneByte ? 0xbede : 0x1000);
        else expect(v.hasExtension).toBe(false);
        expect([...v.payload]).toEqual([...i.payload]);
        expect(v.paddingLength).toBe(i.paddingLength ?? 0);
      }),
      { numRuns: 500, seed: 16 },
    );
  });

  test("in-place rewrites change their field only: the rest of the packet is byte for byte the same", () => {
    const rewrite = fc.record({
      ssrc: fc.nat({ max: 0xffffffff }),
      sequenceNumber: fc.integer({ min: 0, max: 0xffff }),
      timestamp: fc.nat({ max: 0xffffffff }),
      payloadType: fc.integer({ min: 0, max: 127 }),
      marker: fc.boolean(),
    });
    fc.assert(
      fc.property(init, rewrite, fc.uint8Array({ minLength: 40, maxLength: 40 }), (i, w, fill) => {
        const bytes = built(i);
        const v = packet(bytes);
        v.ssrc = w.ssrc;
        v.sequenceNumber = w.sequenceNumber;
        v.timestamp = w.timestamp;
        v.payloadType = w.payloadType;
        v.marker = w.marker;
        const newValues = (i.extensions ?? []).map((e) => fill.subarray(0, e.value.length));
        for (const [k, e] of (i.extensions ?? []).entries())
          expect(v.setExtension(e.id, newValues[k] as Uint8Array)).toBe(true);
        const expected = built({
          ...i,
          ...w,
          extensions: (i.extensions ?? []).map((e, k) => ({
            id: e.id,
            value: newValues[k] as Uint8Array,
          })),
        });
        expect([...bytes]).toEqual([...expected]);
      }),
      { numRuns: 300, seed: 17 },
    );
  });
});

describe("RTP: interoperability with werift-rtp", () => {
  const shape = fc.record({
    payloadType: fc.integer({ min: 0, max: 127 }),
    sequenceNumber: fc.integer({ min: 0, max: 0xffff }),
    timestamp: fc.nat({ max: 0xffffffff }),
    ssrc: fc.nat({ max: 0xffffffff }),
    marker: fc.boolean(),
    csrcs: fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 4 }),
    extensions: fc.uniqueArray(
      fc.record({
        id: fc.integer({ min: 1, max: 14 }),
        value: fc.uint8Array({ minLength: 1, maxLength: 16 }),
      }),
      { maxLength: 4, selector: (e) => e.id },
    ),
    payload: fc.uint8Array({ maxLength: 200 }),
  });

  test("werift reads what we build, we read what werift builds", () => {
    fc.assert(
      fc.property(shape, (s) => {
        const ours = built(s);
        const theirs = WeriftPacket.deSerialize(Buffer.from(ours));
        expect([
          theirs.header.payloadType,
          theirs.header.sequenceNumber,
          theirs.header.timestamp,
          theirs.header.ssrc,
          theirs.header.marker,
          theirs.header.csrc,
        ]).toEqual([s.payloadType, s.sequenceNumber, s.timestamp, s.ssrc, s.marker, s.csrcs]);
        expect(theirs.header.extensions.map((e) => [e.id, [...e.payload]])).toEqual(
          s.extensions.map((e) => [e.id, [...e.value]]),
        );
        expect([...theirs.payload]).toEqual([...s.payload]);

        const header = new RtpHeader({
          payloadType: s.payloadType,
          sequenceNumber: s.sequenceNumber,
          timestamp: s.timestamp,
          ssrc: s.ssrc,
          marker: s.marker,
          csrc: s.csrcs,
          csrcLength: s.csrcs.length,
          extension: s.extensions.length > 0,
          extensions: s.extensions.map((e) => ({ id: e.id, payload: Buffer.from(e.value) })),
        });
        const wire = new WeriftPacket(header, Buffer.from(s.payload)).serialize();
        const v = packet(new Uint8Array(wire));
        expect([v.payloadType, v.sequenceNumber, v.timestamp, v.ssrc, v.marker, v.csrcs()]).toEqual(
          [s.payloadType, s.sequenceNumber, s.timestamp, s.ssrc, s.marker, s.csrcs],
        );
        expect(exts(v)).toEqual(s.extensions.map((e) => [e.id, [...e.value]]));
        expect([...v.payload]).toEqual([...s.payload]);
      }),
      { numRuns: 200, seed: 18 },
    );
  });
});

describe("RTP: refusals and hostile input", () => {
  const base = { payloadType: 96, sequenceNumber: 1, timestamp: 2, ssrc: 3 };

  test("each refusal has its reason; the builder refuses what it cannot write", () => {
    const ok = built({ ...base, payload: new Uint8Array(4) });
    const reason = (b: Uint8Array) => {
      const r = parseRtp(b);
      return r.ok ? "ok" : r.reason;
    };
    expect(reason(ok)).toBe("ok");
    expect(reason(ok.subarray(0, 11))).toBe("rtp-short");
    expect(reason(new Uint8Array(0))).toBe("rtp-short");
    expect(reason(Uint8Array.of(0x40, ...ok.subarray(1)))).toBe("rtp-bad-version");
    expect(reason(Uint8Array.of(0x8f, ...ok.subarray(1)))).toBe("rtp-short"); // 15 CSRCs claimed
    expect(reason(Uint8Array.of(0x90, ...ok.subarray(1, 14)))).toBe("rtp-short"); // no ext header
    // an extension header claiming 255 words
    expect(reason(Uint8Array.of(0x90, ...ok.subarray(1, 12), 0xbe, 0xde, 0, 0xff))).toBe(
      "rtp-bad-extension",
    );
    expect(reason(Uint8Array.of(0xa0, ...ok.subarray(1, 15), 0))).toBe("rtp-bad-padding");
    expect(reason(Uint8Array.of(0xa0, ...ok.subarray(1, 15), 200))).toBe("rtp-bad-padding");
    expect(reason(Uint8Array.of(0xa0, ...ok.subarray(1, 12), 1))).toBe("ok"); // a packet of padding

    expect(() => writeRtp({ ...base, payload: new Uint8Array(1) }, new Uint8Array(12))).toThrow(
      RangeError,
    );
    expect(() => writeRtp({ ...base, payload: new Uint8Array(1) }, new Uint8Array(13), 1)).toThrow(
      RangeError,
    );
    const big = new Uint8Array(2000);
    expect(() =>
      writeRtp({ ...base, csrcs: new Array(16).fill(1), payload: new Uint8Array(0) }, big),
    ).toThrow("at most 15 CSRCs");
    expect(() =>
      writeRtp({ ...base, extensions: [{ id: 0, value: new Uint8Array(1) }], payload: big }, big),
    ).toThrow(RangeError);
    expect(() =>
      writeRtp({ ...base, extensions: [{ id: 1, value: new Uint8Array(256) }], payload: big }, big),
    ).toThrow(RangeError);
    expect(() => writeRtp({ ...base, payload: new Uint8Array(0), paddingLength: 0 }, big)).toThrow(
      RangeError,
    );
  });

  test("RTCP is told from RTP by the second byte (RFC 5761)", () => {
    expect([191, 192, 200, 206, 223, 224].map(isRtcpPayloadType)).toEqual([
      false,
      true,
      true,
      true,
      true,
      false,
    ]);
  });

  test("fuzz: 20,000 mutated packets never throw, each is accepted or refused with a reason", () => {
    const [report] = checkFuzz(targets, 20_000, 0x5eed, "rtp-");
    expect(report?.count).toBe(20_000);
    expect(Object.keys(report?.rejected ?? {}).sort()).toEqual([
      "rtp-bad-extension",
      "rtp-bad-padding",
      "rtp-bad-version",
      "rtp-short",
    ]);
  }, 30_000);
});
