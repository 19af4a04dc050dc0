/**
 * RTCP views and builders: packets from libwebrtc's rtcp_packet unit tests (SR, RR, NACK with and
 * without a wrap, PLI, FIR, REMB) read field by field and rebuilt byte for byte; a compound SR +
 * SDES + BYE laid out by hand from RFC 3550; NACK PID/BLP packing against a set of lost sequence
 * numbers and a reference count of entries; build→parse round trips of every kind (fast-check);
 * werift-rtp reading what we build; transport-wide CC passed through; refusals and a seeded fuzz.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  GenericNack,
  PictureLossIndication,
  ReceiverEstimatedMaxBitrate,
  RtcpPacketConverter,
  RtcpPayloadSpecificFeedback,
  RtcpRrPacket,
  RtcpSourceDescriptionPacket,
  RtcpSrPacket,
  RtcpTransportLayerFeedback,
} from "werift-rtp";
import {
  parseRtcp,
  type ReportBlock,
  type RtcpPacket,
  rtcpLength,
  writeRtcp,
  writeRtcpCompound,
} from "../../src/webrtc/rtcp.ts";
import { checkFuzz } from "./fuzz.ts";
import { targets } from "./fuzz-targets/rtcp.ts";

const hex = (s: string) =>
  new Uint8Array(Buffer.from(s.replace(/#[^\n]*/g, "").replace(/\s+/g, ""), "hex"));
const text = (b: Uint8Array | undefined) =>
  b === undefined ? undefined : Buffer.from(b).toString();

function packets(bytes: Uint8Array): RtcpPacket[] {
  const r = parseRtcp(bytes);
  if (!r.ok) throw new Error(`refused: ${r.reason}`);
  return r.value;
}

function built(...ps: RtcpPacket[]): Uint8Array {
  const out = new Uint8Array(ps.reduce((n, p) => n + rtcpLength(p), 0));
  expect(writeRtcpCompound(ps, out)).toBe(out.length);
  return out;
}

/** Reads then rebuilds `bytes` (one packet): the same bytes come out. */
function roundTrip(bytes: Uint8Array): RtcpPacket {
  const [p, ...rest] = packets(bytes);
  expect(rest).toEqual([]);
  if (p === undefined) throw new Error("no packet");
  expect([...built(p)]).toEqual([...bytes]);
  return p;
}

// libwebrtc modules/rtp_rtcp/source/rtcp_packet/*_unittest.cc: sender 0x12345678, remote 0x23456789.
describe("RTCP: published packets (libwebrtc's unit tests)", () => {
  test("SR without report blocks", () => {
    expect(
      roundTrip(hex("80c80006 12345678 11121418 22242628 33343536 44454647 55565758")),
    ).toEqual({
      type: "sr",
      ssrc: 0x12345678,
      ntpSeconds: 0x11121418,
      ntpFraction: 0x22242628,
      rtpTimestamp: 0x33343536,
      packetCount: 0x44454647,
      octetCount: 0x55565758,
      reports: [],
    });
  });

  test("RR with one report block", () => {
    expect(
      roundTrip(hex("81c90007 12345678 23456789 37111213 22232425 33343536 44454647 55565758")),
    ).toEqual({
      type: "rr",
      ssrc: 0x12345678,
      reports: [
        {
          ssrc: 0x23456789,
          fractionLost: 55,
          packetsLost: 0x111213,
          highestSequence: 0x22232425,
          jitter: 0x33343536,
          lastSr: 0x44454647,
          delaySinceLastSr: 0x55565758,
        },
      ],
    });
  });

  test("generic NACK of [0, 1, 3, 8, 16], and of a list through 65535 → 0 (packed into 4 entries)", () => {
    const nack = packets(hex("81cd0003 12345678 23456789 0000 8085"))[0];
    expect(nack).toEqual({
      type: "nack",
      sender: 0x12345678,
      media: 0x23456789,
      lost: [0, 1, 3, 8, 16],
    });
    const wrapList = [0xffdc, 0xffec, 0xfffe, 0xffff, 0x0000, 0x0001, 0x0003, 0x0014, 0x0064];
    const wrap = hex("81cd0006 12345678 23456789 ffdc8000 fffe0017 00140000 00640000");
    const [w] = packets(wrap);
    expect(w?.type === "nack" && w.lost).toEqual(wrapList);
    // built from the list in any order, it packs into the same bytes
    const shuffled = [3, 0xffff, 0x64, 0, 0xffdc, 0x14, 0xfffe, 1, 0xffec, 3];
    expect([
      ...built({ type: "nack", sender: 0x12345678, media: 0x23456789, lost: shuffled }),
    ]).toEqual([...wrap]);
    expect([
      ...built({ type: "nack", sender: 0x12345678, media: 0x23456789, lost: [16, 8, 3, 1, 0] }),
    ]).toEqual([...hex("81cd0003 12345678 23456789 0000 8085")]);
  });

  test("PLI, FIR (sequence 13), REMB (522,022 bps for three SSRCs)", () => {
    expect(roundTrip(hex("81ce0002 12345678 23456789"))).toEqual({
      type: "pli",
      sender: 0x12345678,
      media: 0x23456789,
    });
    expect(roundTrip(hex("84ce0004 12345678 00000000 23456789 0d000000"))).toEqual({
      type: "fir",
      sender: 0x12345678,
      entries: [{ ssrc: 0x23456789, sequence: 13 }],
    });
    expect(
      roundTrip(
        hex(`8fce0007 12345678 00000000 ${Buffer.from("REMB").toString("hex")}
             0307fb93 23456789 2345678a 2345678b`),
      ),
    ).toEqual({
      type: "remb",
      sender: 0x12345678,
      bitrate: 0x3fb93 * 2,
      ssrcs: [0x23456789, 0x2345678a, 0x2345678b],
    });
  });
});

describe("RTCP: laid out by hand (RFC 3550 §6.4–6.6)", () => {
  test("a compound SR (one report) + SDES CNAME + BYE with a reason; byte fields are views", () => {
    const compound = hex(`
      81 c8 000c  11111111          # SR, 1 report, length 12 words, sender SSRC
      e0000000 00000001             # NTP seconds, fraction
      00015f90 0000000a 000003e8    # RTP ts 90000, 10 packets, 1000 octets
      22222222 05fffffe 0000ffff 00000020 12345678 00010000  # report: 5/256 lost, -2 cumulative
      81 ca 0003  11111111          # SDES, 1 chunk
      01 04 6162 6364 00 00         # CNAME "abcd", null, pad
      81 cb 0003  11111111          # BYE one SSRC
      04 6279 6521 00 00 00         # reason "bye!" + pad
    `);
    const [sr, sdes, bye] = packets(compound);
    expect(sr).toEqual({
      type: "sr",
      ssrc: 0x11111111,
      ntpSeconds: 0xe0000000,
      ntpFraction: 1,
      rtpTimestamp: 90000,
      packetCount: 10,
      octetCount: 1000,
      reports: [
        {
          ssrc: 0x22222222,
          fractionLost: 5,
          packetsLost: -2,
          highestSequence: 0xffff,
          jitter: 0x20,
          lastSr: 0x12345678,
          delaySinceLastSr: 0x10000,
        },
      ],
    });
    expect(sdes?.type).toBe("sdes");
    if (sdes?.type !== "sdes" || bye?.type !== "bye") return;
    const item = sdes.chunks[0]?.items[0];
    expect([sdes.chunks[0]?.ssrc, item?.kind, text(item?.value)]).toEqual([0x11111111, 1, "abcd"]);
    expect(item?.value.buffer).toBe(compound.buffer); // a view, not a copy
    expect([bye.ssrcs, text(bye.reason)]).toEqual([[0x11111111], "bye!"]);
    // rebuilt byte for byte
    expect([...built(...packets(compound))]).toEqual([...compound]);
  });

  test("SDES with two chunks, several items, and a chunk whose items end on a word (a whole word of nulls)", () => {
    const enc = (s: string) => new Uint8Array(Buffer.from(s));
    const sdes: RtcpPacket = {
      type: "sdes",
      chunks: [
        { ssrc: 1, items: [{ kind: 1, value: enc("ab") }] }, // 4 + 4 bytes: then 4 nulls
        {
          ssrc: 2,
          items: [
            { kind: 1, value: enc("cname") },
            { kind: 2, value: enc("Ünïcode") },
          ],
        },
        { ssrc: 3, items: [] },
      ],
    };
    const bytes = built(sdes);
    expect([...bytes.subarray(4, 16)]).toEqual([0, 0, 0, 1, 1, 2, 0x61, 0x62, 0, 0, 0, 0]);
    const [p] = packets(bytes);
    expect(
      p?.type === "sdes" &&
        p.chunks.map((c) => [c.ssrc, c.items.map((i) => [i.kind, text(i.value)])]),
    ).toEqual([
      [1, [[1, "ab"]]],
      [
        2,
        [
          [1, "cname"],
          [2, "Ünïcode"],
        ],
      ],
      [3, []],
    ]);
  });

  test("transport-wide CC (RTPFB FMT 15) and unknown types come through whole; an odd body is rewritten with RTCP padding", () => {
    const twcc = hex("8f cd 0004 00000001 00000002 0001 0002 0000 0000");
    const p = roundTrip(twcc);
    expect(p.type === "other" && [p.packetType, p.format, [...p.bytes]]).toEqual([
      205,
      15,
      [...twcc],
    ]);
    const odd: RtcpPacket = {
      type: "other",
      packetType: 204,
      format: 3,
      bytes: hex("83cc0002 00000009 41"),
    };
    const bytes = built(odd);
    expect([...bytes]).toEqual([...hex("a3cc0002 00000009 41000003")]);
    const [q] = packets(bytes);
    expect(q?.type === "other" && [...q.bytes]).toEqual([...hex("a3cc0002 00000009 41")]);
  });
});

const u32 = fc.nat({ max: 0xffffffff });
const report = fc.record({
  ssrc: u32,
  fractionLost: fc.nat({ max: 255 }),
  packetsLost: fc.integer({ min: -0x800000, max: 0x7fffff }),
  highestSequence: u32,
  jitter: u32,
  lastSr: u32,
  delaySinceLastSr: u32,
});
const bytes255 = fc.uint8Array({ maxLength: 255 });
/** Every kind, in the form the parser gives back (NACK lists are tested on their own). */
const rtcpPacket: fc.Arbitrary<RtcpPacket> = fc.oneof(
  fc.record({
    type: fc.constant("sr" as const),
    ssrc: u32,
    ntpSeconds: u32,
    ntpFraction: u32,
    rtpTimestamp: u32,
    packetCount: u32,
    octetCount: u32,
    reports: fc.array(report, { maxLength: 31 }),
  }),
  fc.record({
    type: fc.constant("rr" as const),
    ssrc: u32,
    reports: fc.array(report, { maxLength: 31 }),
  }),
  fc.record({
    type: fc.constant("sdes" as const),
    chunks: fc.array(
      fc.record({
        ssrc: u32,
        items: fc.array(fc.record({ kind: fc.integer({ min: 1, max: 255 }), value: bytes255 }), {
          maxLength: 4,
        }),
      }),
      { maxLength: 31 },
    ),
  }),
  fc.oneof(
    fc.record({ type: fc.constant("bye" as const), ssrcs: fc.array(u32, { maxLength: 31 }) }),
    fc.record({
      type: fc.constant("bye" as const),
      ssrcs: fc.array(u32, { maxLength: 31 }),
      reason: bytes255,
    }),
  ),
  fc.record({ type: fc.constant("pli" as const), sender: u32, media: u32 }),
  fc.record({
    type: fc.constant("fir" as const),
    sender: u32,
    entries: fc.array(fc.record({ ssrc: u32, sequence: fc.nat({ max: 255 }) }), { maxLength: 8 }),
  }),
  fc.record({
    type: fc.constant("remb" as const),
    sender: u32,
    bitrate: fc.nat({ max: 0x3ffff }).chain((m) => fc.nat({ max: 63 }).map((e) => m * 2 ** e)),
    ssrcs: fc.array(u32, { maxLength: 255 }),
  }),
);

/** The packets as plain data (views copied to arrays), for comparison. */
const plain = (ps: readonly RtcpPacket[]) =>
  JSON.parse(JSON.stringify(ps, (_k, v) => (v instanceof Uint8Array ? [...v] : v)));

describe("RTCP: properties", () => {
  test("a compound of any packets builds and reads back to the same values", () => {
    fc.assert(
      fc.property(fc.array(rtcpPacket, { minLength: 1, maxLength: 5 }), (ps) => {
        const bytes = built(...ps);
        expect(bytes.length % 4).toBe(0);
        expect(plain(packets(bytes))).toEqual(plain(ps));
      }),
      { numRuns: 400, seed: 16 },
    );
  });

  test("NACK: any set of lost sequence numbers (wraps included) packs into the fewest PID/BLP entries and reads back", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.uniqueArray(fc.integer({ min: 0, max: 600 }), { minLength: 1, maxLength: 120 }),
        (base, offsets) => {
          const lost = offsets.map((o) => (base + o) & 0xffff);
          const bytes = built({ type: "nack", sender: 1, media: 2, lost });
          // a reference decoder of the FCI entries
          const decoded = new Set<number>();
          for (let f = 12; f < bytes.length; f += 4) {
            const pid = ((bytes[f] as number) << 8) | (bytes[f + 1] as number);
            const blp = ((bytes[f + 2] as number) << 8) | (bytes[f + 3] as number);
            decoded.add(pid);
            for (let i = 0; i < 16; i++) if (blp & (1 << i)) decoded.add((pid + i + 1) & 0xffff);
          }
          expect(decoded).toEqual(new Set(lost));
          // the reference count: greedy over the offsets in order (they span less than half the circle)
          let entries = 0;
          let pid = -100;
          for (const o of [...offsets].sort((a, b) => a - b)) {
            if (o - pid > 16) {
              entries++;
              pid = o;
            }
          }
          expect(bytes.length).toBe(12 + 4 * entries);
          const [p] = packets(bytes);
          expect(p?.type === "nack" && new Set(p.lost)).toEqual(new Set(lost));
        },
      ),
      { numRuns: 400, seed: 17 },
    );
  });

  test("REMB keeps the bitrate to 18 significant bits, rounding down", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 2 ** 80, noNaN: true }), (bitrate) => {
        const [p] = packets(built({ type: "remb", sender: 1, bitrate, ssrcs: [] }));
        const got = p?.type === "remb" ? p.bitrate : -1;
        expect(got).toBeLessThanOrEqual(bitrate);
        expect(got).toBeGreaterThanOrEqual(Math.floor(bitrate) * (1 - 2 ** -17) - 1);
      }),
      { numRuns: 300, seed: 18 },
    );
  });
});

describe("RTCP: interoperability with werift-rtp", () => {
  test("werift reads our SR, RR, SDES, NACK, PLI, FIR and REMB", () => {
    const rb: ReportBlock = {
      ssrc: 9,
      fractionLost: 12,
      packetsLost: 5,
      highestSequence: 70000,
      jitter: 33,
      lastSr: 44,
      delaySinceLastSr: 55,
    };
    // one packet at a time: werift's feedback parsers read to the end of the buffer they get
    const ours: RtcpPacket[] = [
      {
        type: "sr",
        ssrc: 7,
        ntpSeconds: 0x11121418,
        ntpFraction: 0x22242628,
        rtpTimestamp: 90000,
        packetCount: 10,
        octetCount: 1000,
        reports: [rb],
      },
      { type: "rr", ssrc: 7, reports: [rb, { ...rb, ssrc: 10 }] },
      {
        type: "sdes",
        chunks: [{ ssrc: 7, items: [{ kind: 1, value: new TextEncoder().encode("cname-7") }] }],
      },
      // (werift does not wrap past 65535: PID + bit + 1 unmasked)
      { type: "nack", sender: 7, media: 9, lost: [1000, 1001, 1016, 1017, 40] },
      { type: "pli", sender: 7, media: 9 },
      { type: "fir", sender: 7, entries: [{ ssrc: 9, sequence: 3 }] },
      { type: "remb", sender: 7, bitrate: 1_000_000, ssrcs: [9, 10] },
    ];
    const [sr, rr, sdes, nack, pli, fir, remb] = ours.flatMap((p) =>
      RtcpPacketConverter.deSerialize(Buffer.from(built(p))),
    );
    if (!(sr instanceof RtcpSrPacket && rr instanceof RtcpRrPacket)) throw new Error("SR, RR");
    expect([sr.ssrc, sr.senderInfo.ntpTimestamp, sr.senderInfo.rtpTimestamp]).toEqual([
      7,
      (0x11121418n << 32n) | 0x22242628n,
      90000,
    ]);
    expect([sr.senderInfo.packetCount, sr.senderInfo.octetCount]).toEqual([10, 1000]);
    expect(sr.reports[0]).toMatchObject({
      ssrc: 9,
      fractionLost: 12,
      packetsLost: 5,
      highestSequence: 70000,
      jitter: 33,
      lsr: 44,
      dlsr: 55,
    });
    expect(rr.reports.map((r) => r.ssrc)).toEqual([9, 10]);
    if (!(sdes instanceof RtcpSourceDescriptionPacket)) throw new Error("SDES");
    expect([
      sdes.chunks[0]?.source,
      sdes.chunks[0]?.items[0]?.type,
      sdes.chunks[0]?.items[0]?.text,
    ]).toEqual([7, 1, "cname-7"]);
    if (!(nack instanceof RtcpTransportLayerFeedback && nack.feedback instanceof GenericNack))
      throw new Error("NACK");
    expect([nack.feedback.senderSsrc, nack.feedback.mediaSourceSsrc]).toEqual([7, 9]);
    expect([...nack.feedback.lost].sort((a, b) => a - b)).toEqual([40, 1000, 1001, 1016, 1017]);
    const psfb = [pli, fir, remb].map((p) =>
      p instanceof RtcpPayloadSpecificFeedback ? p.feedback : undefined,
    );
    const [thePli, theFir, theRemb] = psfb;
    if (!(thePli instanceof PictureLossIndication)) throw new Error("PLI");
    expect([thePli.senderSsrc, thePli.mediaSsrc]).toEqual([7, 9]);
    // (werift does not export its FIR class)
    if (theFir === undefined || !("fir" in theFir)) throw new Error("FIR");
    expect(theFir.fir).toEqual([{ ssrc: 9, sequenceNumber: 3 }]);
    if (!(theRemb instanceof ReceiverEstimatedMaxBitrate)) throw new Error("REMB");
    expect([theRemb.senderSsrc, theRemb.ssrcFeedbacks, theRemb.bitrate]).toEqual([
      7,
      [9, 10],
      BigInt(1_000_000 - (1_000_000 % 4)),
    ]);
  });
});

describe("RTCP: refusals and hostile input", () => {
  test("each refusal has its reason", () => {
    const reason = (b: Uint8Array) => {
      const r = parseRtcp(b);
      return r.ok ? "ok" : r.reason;
    };
    const pli = built({ type: "pli", sender: 1, media: 2 });
    expect(reason(pli)).toBe("ok");
    expect(reason(pli.subarray(0, 3))).toBe("rtcp-short");
    expect(reason(new Uint8Array(0))).toBe("rtcp-short");
    expect(reason(Uint8Array.of(0x41, ...pli.subarray(1)))).toBe("rtcp-bad-version");
    expect(reason(Uint8Array.of(...pli.subarray(0, 2), 0, 9, ...pli.subarray(4)))).toBe(
      "rtcp-bad-length",
    );
    expect(reason(Uint8Array.of(0xa1, ...pli.subarray(1, 11), 0))).toBe("rtcp-bad-length"); // padding 0
    expect(reason(Uint8Array.of(0xa1, ...pli.subarray(1, 11), 9))).toBe("rtcp-bad-length"); // into the header
    expect(reason(hex("81c80001 11111111"))).toBe("rtcp-short"); // an SR of 8 bytes
    expect(
      reason(hex("82c90007 12345678 23456789 37111213 22232425 33343536 44454647 55565758")),
    ).toBe("rtcp-short"); // an RR claiming two report blocks, holding one
    expect(reason(hex("81cd0002 12345678 23456789"))).toBe("rtcp-short"); // a NACK of nothing
    expect(reason(hex("81ca0002 11111111 01046162"))).toBe("rtcp-short"); // an SDES item past the packet
    expect(reason(hex("81ca0002 11111111 01026162"))).toBe("rtcp-short"); // no null item
    expect(reason(hex("81cb0002 11111111 09616200"))).toBe("rtcp-short"); // a BYE reason past the packet
    expect(reason(Uint8Array.of(...pli, 0x81))).toBe("rtcp-short");
  });

  test("the builder refuses what it cannot write", () => {
    const big = new Uint8Array(4096);
    expect(() => writeRtcp({ type: "pli", sender: 1, media: 2 }, new Uint8Array(11))).toThrow(
      RangeError,
    );
    expect(() => writeRtcp({ type: "pli", sender: 1, media: 2 }, new Uint8Array(12), 4)).toThrow(
      RangeError,
    );
    expect(() => writeRtcp({ type: "nack", sender: 1, media: 2, lost: [] }, big)).toThrow(
      RangeError,
    );
    expect(() => writeRtcp({ type: "bye", ssrcs: new Array(32).fill(1) }, big)).toThrow(
      "at most 31",
    );
    expect(() => writeRtcp({ type: "remb", sender: 1, bitrate: -1, ssrcs: [] }, big)).toThrow(
      RangeError,
    );
    expect(() => writeRtcp({ type: "remb", sender: 1, bitrate: 2 ** 81, ssrcs: [] }, big)).toThrow(
      RangeError,
    );
    expect(() =>
      writeRtcp(
        { type: "sdes", chunks: [{ ssrc: 1, items: [{ kind: 1, value: new Uint8Array(256) }] }] },
        big,
      ),
    ).toThrow("at most 255");
  });

  test("fuzz: 20,000 mutated compounds never throw, each is accepted or refused with a reason", () => {
    const [report] = checkFuzz(targets, 20_000, 0x5eed, "rtcp-");
    expect(report?.count).toBe(20_000);
    expect(Object.keys(report?.rejected ?? {}).sort()).toEqual([
      "rtcp-bad-length",
      "rtcp-bad-version",
      "rtcp-short",
    ]);
  }, 30_000);
});
