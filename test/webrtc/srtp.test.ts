import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  type RtpHeader,
  RtpPacket,
  SrtcpSession,
  SrtpSession,
  type SrtpProfile as WeriftProfile,
} from "werift-rtp";
import {
  createSrtpPair,
  deriveSrtpSessionKeys,
  isSrtpProfile,
  SRTP_AEAD_AES_128_GCM,
  SRTP_AES128_CM_HMAC_SHA1_80,
  SRTP_PROFILE_PREFERENCE,
  SRTP_PROFILES,
  type SrtpProfile,
  SrtpProtector,
  type SrtpSessionKeys,
  SrtpUnprotector,
  splitSrtpKeyingMaterial,
  srtpKdf,
  srtpKeyingMaterialLength,
} from "../../src/webrtc/srtp.ts";
import {
  estimateSrtpIndex,
  REPLAY_FRESH,
  REPLAY_SEEN,
  REPLAY_TOO_OLD,
  ReplayWindow,
} from "../../src/webrtc/srtp-replay.ts";
import { runFuzz } from "./fuzz.ts";
import { targets } from "./fuzz-targets/srtp.ts";

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const PROFILES: readonly SrtpProfile[] = [SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_HMAC_SHA1_80];
const NAMES = { [SRTP_AEAD_AES_128_GCM]: "GCM", [SRTP_AES128_CM_HMAC_SHA1_80]: "AES-CM" } as const;

/** Session keys given directly (the RFC 7714 and RFC 3711 B.2 vectors start from session keys). */
function sessionKeys(
  key: Uint8Array,
  salt: Uint8Array,
  auth = new Uint8Array(20),
): SrtpSessionKeys {
  return {
    rtpKey: key,
    rtpSalt: salt,
    rtpAuthKey: auth,
    rtcpKey: key,
    rtcpSalt: salt,
    rtcpAuthKey: auth,
  };
}

/** Fixed keying material for `profile` (no randomness in tests that need a fixed answer). */
function material(profile: SrtpProfile, seed = 1): Uint8Array {
  return new Uint8Array(srtpKeyingMaterialLength(profile)).map(
    (_, i) => (i * 29 + seed * 101) & 255,
  );
}

/** A client protector and the server unprotector that reads it. */
function link(profile: SrtpProfile, replayWindow?: number) {
  const m = material(profile);
  return {
    tx: createSrtpPair(profile, m, "client").protector,
    rx: createSrtpPair(profile, m, "server", replayWindow === undefined ? {} : { replayWindow })
      .unprotector,
  };
}

interface RtpShape {
  readonly seq: number;
  readonly ssrc: number;
  readonly csrcs: readonly number[];
  /** Header extension: profile and words, or none. */
  readonly ext: { readonly profile: number; readonly words: Uint8Array } | null;
  readonly marker: boolean;
  readonly payload: Uint8Array;
}

function buildRtp(s: RtpShape): Uint8Array {
  const extLength = s.ext === null ? 0 : 4 + s.ext.words.length;
  const p = new Uint8Array(12 + 4 * s.csrcs.length + extLength + s.payload.length);
  const v = new DataView(p.buffer);
  p[0] = 0x80 | (s.ext === null ? 0 : 0x10) | s.csrcs.length;
  p[1] = (s.marker ? 0x80 : 0) | 111;
  v.setUint16(2, s.seq);
  v.setUint32(4, 0x01020304);
  v.setUint32(8, s.ssrc);
  s.csrcs.forEach((c, i) => {
    v.setUint32(12 + 4 * i, c);
  });
  let at = 12 + 4 * s.csrcs.length;
  if (s.ext !== null) {
    v.setUint16(at, s.ext.profile);
    v.setUint16(at + 2, s.ext.words.length / 4);
    p.set(s.ext.words, at + 4);
    at += extLength;
  }
  p.set(s.payload, at);
  return p;
}

const rtpShape: fc.Arbitrary<RtpShape> = fc.record({
  seq: fc.integer({ min: 0, max: 0xffff }),
  ssrc: fc.integer({ min: 0, max: 0xffffffff }),
  csrcs: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 15 }),
  ext: fc.option(
    fc.record({
      profile: fc.integer({ min: 0, max: 0xffff }),
      words: fc
        .integer({ min: 0, max: 12 })
        .chain((n) => fc.uint8Array({ minLength: 4 * n, maxLength: 4 * n })),
    }),
  ),
  marker: fc.boolean(),
  payload: fc.uint8Array({ maxLength: 1400 }),
});

const rtcpPacket: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.uint8Array({ maxLength: 300 }))
  .map(([ssrc, body]) => {
    const p = new Uint8Array(8 + body.length);
    p.set([0x80, 201, 0, 1]);
    new DataView(p.buffer).setUint32(4, ssrc);
    p.set(body, 8);
    return p;
  });

describe("RFC 3711 Appendix B.2: AES-CM keystream", () => {
  // Session key and salt given; SSRC 0, ROC 0, SEQ 0: a zero payload encrypts to the keystream.
  const key = hex("2B7E151628AED2A6ABF7158809CF4F3C");
  const salt = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD");
  const protector = new SrtpProtector(SRTP_AES128_CM_HMAC_SHA1_80, sessionKeys(key, salt));
  const packet = new Uint8Array(12 + 1_044_512);
  packet[0] = 0x80;
  const keystream = protector.protectRtp(packet).subarray(12, 12 + 1_044_512);

  test("first three blocks (counters ...0000 to ...0002)", () => {
    expect(toHex(keystream.subarray(0, 48))).toBe(
      "e03ead0935c95e80e166b16dd92b4eb4d23513162b02d0f72a43a2fe4a5f97ab41e95b3bb0a2e8dd477901e4fca894c0",
    );
  });

  test("last three blocks of the 1,044,512-byte segment (counters ...FEFF to ...FF01)", () => {
    expect(toHex(keystream.subarray(keystream.length - 48))).toBe(
      "ec8cdf7398607cb0f2d21675ea9ea1e4362b7c3c6773516318a077d7fc5073ae6a2cc3787889374fbeb4c81b17ba6c44",
    );
  });
});

describe("RFC 3711 Appendix B.3: key derivation", () => {
  const masterKey = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
  const masterSalt = hex("0EC675AD498AFEEBB6960B3AABE6");

  test("cipher key, cipher salt and the 94-byte auth key block", () => {
    expect(toHex(srtpKdf(masterKey, masterSalt, 0x00, 16))).toBe(
      "c61e7a93744f39ee10734afe3ff7a087",
    );
    expect(toHex(srtpKdf(masterKey, masterSalt, 0x02, 14))).toBe("30cbbc08863d8c85d49db34a9ae1");
    expect(toHex(srtpKdf(masterKey, masterSalt, 0x01, 94))).toBe(
      "cebe321f6ff7716b6fd4ab49af256a156d38baa48f0a0acf3c34e2359e6cdbce" +
        "e049646c43d9327ad175578ef72270986371c10c9a369ac2f94a8c5fbcdddc25" +
        "6d6e919a48b610ef17c2041e474035766b68642c59bbfc2f34db60dbdfb2",
    );
  });

  test("deriveSrtpSessionKeys takes the profile's lengths (20-byte HMAC key for AES-CM)", () => {
    const keys = deriveSrtpSessionKeys(SRTP_AES128_CM_HMAC_SHA1_80, masterKey, masterSalt);
    expect(toHex(keys.rtpKey)).toBe("c61e7a93744f39ee10734afe3ff7a087");
    expect(toHex(keys.rtpSalt)).toBe("30cbbc08863d8c85d49db34a9ae1");
    expect(toHex(keys.rtpAuthKey)).toBe("cebe321f6ff7716b6fd4ab49af256a156d38baa4");
    expect(keys.rtcpKey.length).toBe(16);
    expect(keys.rtcpSalt.length).toBe(14);
    expect(keys.rtcpAuthKey.length).toBe(20);
    const gcm = deriveSrtpSessionKeys(SRTP_AEAD_AES_128_GCM, masterKey, masterSalt.subarray(0, 12));
    expect(gcm.rtpSalt.length).toBe(12);
    expect(gcm.rtpAuthKey.length).toBe(0);
    // RFC 7714 errata 4938: the 96-bit salt is used times 2^16, i.e. padded with two zero bytes.
    const padded = new Uint8Array(14);
    padded.set(masterSalt.subarray(0, 12));
    expect(toHex(gcm.rtpKey)).toBe(toHex(srtpKdf(masterKey, padded, 0, 16)));
  });

  test("keys or salts of another length are a RangeError", () => {
    expect(() => srtpKdf(new Uint8Array(15), masterSalt, 0, 16)).toThrow(RangeError);
    expect(() => srtpKdf(masterKey, new Uint8Array(13), 0, 16)).toThrow(RangeError);
    expect(() => deriveSrtpSessionKeys(SRTP_AEAD_AES_128_GCM, masterKey, masterSalt)).toThrow(
      RangeError,
    );
  });
});

describe("RFC 7714 §16 and §17: AEAD_AES_128_GCM vectors", () => {
  const key = hex("000102030405060708090a0b0c0d0e0f");
  const salt = hex("517569642070726f2071756f");
  const keys = sessionKeys(key, salt, new Uint8Array(0));
  const rtp = hex(`8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
    69736120 696e2070 61727465 73207472 6573`);
  const srtp = hex(`8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5
    0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce`);
  const rtcp = hex(`81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
    deadbeef deadbeef deadbeef deadbeef deadbeef`);
  const srtcp = hex(`81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d
    c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4`);
  // §17.3/§17.4: the same packet authenticated only (E flag clear).
  const srtcpTagged = hex(`81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
    deadbeef deadbeef deadbeef deadbeef deadbeef 841dd968 3dd78ec9 2ae58790 125f62b3 000005d4`);

  test("§16.1 SRTP encryption (SSRC 5501a0b2, ROC 0, SEQ f17b)", () => {
    expect(toHex(new SrtpProtector(SRTP_AEAD_AES_128_GCM, keys).protectRtp(rtp))).toBe(toHex(srtp));
  });

  test("§16.2 SRTP decryption, and a changed tag is refused", () => {
    const r = new SrtpUnprotector(SRTP_AEAD_AES_128_GCM, keys).unprotectRtp(srtp);
    expect(r.ok && toHex(r.value)).toBe(toHex(rtp));
    const bad = srtp.slice();
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
    const u = new SrtpUnprotector(SRTP_AEAD_AES_128_GCM, keys);
    expect(u.unprotectRtp(bad)).toEqual({ ok: false, reason: "srtp-auth-failed" });
    expect(u.rejects.count("srtp-auth-failed")).toBe(1);
  });

  test("§17.1 SRTCP encryption at SRTCP index 0x5d4", () => {
    const p = new SrtpProtector(SRTP_AEAD_AES_128_GCM, keys);
    for (let i = 0; i < 0x5d4; i++) p.protectRtcp(rtcp); // indexes 0 .. 0x5d3
    expect(toHex(p.protectRtcp(rtcp))).toBe(toHex(srtcp));
  });

  test("§17.2 SRTCP decryption and §17.4 tagged-only (E = 0) decryption", () => {
    const u = new SrtpUnprotector(SRTP_AEAD_AES_128_GCM, keys);
    const r = u.unprotectRtcp(srtcp);
    expect(r.ok && toHex(r.value)).toBe(toHex(rtcp));
    const t = new SrtpUnprotector(SRTP_AEAD_AES_128_GCM, keys).unprotectRtcp(srtcpTagged);
    expect(t.ok && toHex(t.value)).toBe(toHex(rtcp));
    // the same index again is a replay
    expect(u.unprotectRtcp(srtcp)).toEqual({ ok: false, reason: "srtcp-replay" });
  });
});

describe("SRTP_AES128_CM_HMAC_SHA1_80 known answers (libsrtp's srtp_validate reference packets)", () => {
  // Master key and salt of RFC 3711 B.3; SSRC cafebabe, SEQ 1234; SRTCP index 1.
  const keys = deriveSrtpSessionKeys(
    SRTP_AES128_CM_HMAC_SHA1_80,
    hex("e1f97a0d3e018be0d64fa32c06de4139"),
    hex("0ec675ad498afeebb6960b3aabe6"),
  );
  const rtp = hex("800f1234decafbadcafebabe abababababababababababababababab");
  const srtp = hex(
    "800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb",
  );
  const rtcp = hex("81c8000bcafebabe abababababababababababababababab");
  const srtcp = hex(
    "81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798",
  );

  test("SRTP protect and unprotect", () => {
    expect(toHex(new SrtpProtector(SRTP_AES128_CM_HMAC_SHA1_80, keys).protectRtp(rtp))).toBe(
      toHex(srtp),
    );
    const r = new SrtpUnprotector(SRTP_AES128_CM_HMAC_SHA1_80, keys).unprotectRtp(srtp);
    expect(r.ok && toHex(r.value)).toBe(toHex(rtp));
  });

  test("SRTCP protect (second packet, index 1) and unprotect", () => {
    const p = new SrtpProtector(SRTP_AES128_CM_HMAC_SHA1_80, keys);
    p.protectRtcp(rtcp);
    expect(toHex(p.protectRtcp(rtcp))).toBe(toHex(srtcp));
    const r = new SrtpUnprotector(SRTP_AES128_CM_HMAC_SHA1_80, keys).unprotectRtcp(srtcp);
    expect(r.ok && toHex(r.value)).toBe(toHex(rtcp));
  });
});

describe("profiles and DTLS-SRTP keying material", () => {
  test("ids, lengths and preference", () => {
    expect(SRTP_AEAD_AES_128_GCM).toBe(0x0007);
    expect(SRTP_AES128_CM_HMAC_SHA1_80).toBe(0x0001);
    expect(SRTP_PROFILES[SRTP_AEAD_AES_128_GCM]).toMatchObject({
      keyLength: 16,
      saltLength: 12,
      tagLength: 16,
    });
    expect(SRTP_PROFILES[SRTP_AES128_CM_HMAC_SHA1_80]).toMatchObject({
      keyLength: 16,
      saltLength: 14,
      tagLength: 10,
    });
    expect(srtpKeyingMaterialLength(SRTP_AEAD_AES_128_GCM)).toBe(56);
    expect(srtpKeyingMaterialLength(SRTP_AES128_CM_HMAC_SHA1_80)).toBe(60);
    expect(SRTP_PROFILE_PREFERENCE[0]).toBe(SRTP_AEAD_AES_128_GCM);
    expect([1, 7, 2, 8, 0].map(isSrtpProfile)).toEqual([true, true, false, false, false]);
  });

  test("RFC 5764 §4.2 order: client key, server key, client salt, server salt", () => {
    const m = new Uint8Array(56).map((_, i) => i);
    const client = splitSrtpKeyingMaterial(SRTP_AEAD_AES_128_GCM, m, "client");
    const server = splitSrtpKeyingMaterial(SRTP_AEAD_AES_128_GCM, m, "server");
    expect([...client.localKey]).toEqual([...m.subarray(0, 16)]);
    expect([...client.remoteKey]).toEqual([...m.subarray(16, 32)]);
    expect([...client.localSalt]).toEqual([...m.subarray(32, 44)]);
    expect([...client.remoteSalt]).toEqual([...m.subarray(44, 56)]);
    expect(server.localKey).toEqual(client.remoteKey);
    expect(server.localSalt).toEqual(client.remoteSalt);
    expect(server.remoteKey).toEqual(client.localKey);
    expect(server.remoteSalt).toEqual(client.localSalt);
    expect(() => splitSrtpKeyingMaterial(SRTP_AES128_CM_HMAC_SHA1_80, m, "client")).toThrow(
      RangeError,
    );
  });

  for (const profile of PROFILES) {
    test(`${NAMES[profile]}: each side's protector pairs with the other side's unprotector`, () => {
      const m = material(profile);
      const client = createSrtpPair(profile, m, "client");
      const server = createSrtpPair(profile, m, "server");
      const packet = buildRtp({
        seq: 7,
        ssrc: 9,
        csrcs: [],
        ext: null,
        marker: false,
        payload: new Uint8Array(20),
      });
      const a = server.unprotector.unprotectRtp(client.protector.protectRtp(packet));
      const b = client.unprotector.unprotectRtp(server.protector.protectRtp(packet));
      expect(a.ok && b.ok).toBe(true);
      // and not with its own unprotector (different keys each way)
      const own = client.unprotector.unprotectRtp(client.protector.protectRtp(packet));
      expect(own.ok).toBe(false);
    });
  }
});

describe("index estimation and replay window", () => {
  test("RFC 3711 Appendix A recovers any index within 2^15 of the highest", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: -32767, max: 32767 }),
        (highest, delta) => {
          const index = highest + delta;
          fc.pre(index >= 0);
          expect(estimateSrtpIndex(highest, index % 65536)).toBe(index);
        },
      ),
      { numRuns: 2000 },
    );
    expect(estimateSrtpIndex(10, 65530)).toBeLessThan(0); // ROC - 1 at ROC 0
  });

  test("ReplayWindow matches a set model", () => {
    const size = 64;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -80, max: 100 }), { maxLength: 300 }), (steps) => {
        const w = new ReplayWindow(size);
        const seen = new Set<number>();
        let highest = -1;
        let cursor = 0;
        for (const step of steps) {
          const index = Math.max(0, cursor + step);
          cursor = Math.max(cursor, index);
          const expected =
            index > highest
              ? REPLAY_FRESH
              : highest - index >= size
                ? REPLAY_TOO_OLD
                : seen.has(index)
                  ? REPLAY_SEEN
                  : REPLAY_FRESH;
          expect(w.check(index)).toBe(expected);
          if (expected === REPLAY_FRESH) {
            w.accept(index);
            seen.add(index);
            highest = Math.max(highest, index);
          }
        }
      }),
      { numRuns: 300 },
    );
    expect(() => new ReplayWindow(100)).toThrow(RangeError);
    expect(() => new ReplayWindow(32)).toThrow(RangeError);
  });
});

describe("protect → unprotect properties", () => {
  for (const profile of PROFILES) {
    const name = NAMES[profile];

    test(`${name}: random RTP headers (CSRCs, extensions), payloads and sequence numbers round-trip`, () => {
      fc.assert(
        fc.property(rtpShape, fc.boolean(), (shape, inPlace) => {
          const { tx, rx } = link(profile);
          const packet = buildRtp(shape);
          let protectedPacket: Uint8Array;
          if (inPlace) {
            const room = new Uint8Array(packet.length + tx.rtpOverhead);
            room.set(packet);
            protectedPacket = tx.protectRtp(room.subarray(0, packet.length), room);
            expect(protectedPacket.buffer).toBe(room.buffer);
          } else {
            protectedPacket = tx.protectRtp(packet);
          }
          expect(protectedPacket.length).toBe(packet.length + tx.rtpOverhead);
          const copy = protectedPacket.slice();
          const r = inPlace
            ? rx.unprotectRtp(protectedPacket, protectedPacket)
            : rx.unprotectRtp(protectedPacket);
          if (!r.ok) throw new Error(r.reason);
          expect(toHex(r.value)).toBe(toHex(packet));
          if (!inPlace) expect(toHex(protectedPacket)).toBe(toHex(copy)); // input only read
        }),
        { numRuns: 150 },
      );
    });

    test(`${name}: RTCP round-trips, the SRTCP index counts up per SSRC with the E flag set`, () => {
      fc.assert(
        fc.property(fc.array(rtcpPacket, { minLength: 1, maxLength: 20 }), (packets) => {
          const { tx, rx } = link(profile);
          const sent = new Map<number, number>();
          for (const packet of packets) {
            const out = tx.protectRtcp(packet);
            expect(out.length).toBe(packet.length + tx.rtcpOverhead);
            const ssrc = new DataView(packet.buffer).getUint32(4);
            const at = profile === SRTP_AEAD_AES_128_GCM ? out.length - 4 : out.length - 14;
            const word = new DataView(out.buffer, out.byteOffset).getUint32(at);
            expect(word).toBe((0x80000000 | (sent.get(ssrc) ?? 0)) >>> 0);
            sent.set(ssrc, (sent.get(ssrc) ?? 0) + 1);
            const r = rx.unprotectRtcp(out);
            if (!r.ok) throw new Error(r.reason);
            expect(toHex(r.value)).toBe(toHex(packet));
          }
        }),
        { numRuns: 60 },
      );
    });

    test(`${name}: ROC rollover across 65535 → 0, with packets reordered around the wrap`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 65536 - 300, max: 65535 }),
          fc.integer({ min: 1, max: 3 }),
          fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 400, maxLength: 400 }),
          (start, wraps, jitter) => {
            const { tx, rx } = link(profile);
            // A sender's stream: `wraps` laps of large forward steps then a dense run over a wrap.
            const seqs: number[] = [];
            let index = start;
            for (let i = 0; i < 6 * wraps; i++) {
              seqs.push(index);
              index += 11_000;
            }
            const wrapAt = (Math.floor(index / 65536) + 1) * 65536;
            while (index < wrapAt - 200) {
              seqs.push(index);
              index += 11_000;
            }
            const dense = seqs.length;
            for (let i = 0; i < 400; i++) seqs.push(wrapAt - 200 + i);
            // sent in order; delivered with each packet delayed by up to 40 places
            const sent = seqs.map((i) => {
              const p = buildRtp({
                seq: i % 65536,
                ssrc: 5,
                csrcs: [],
                ext: null,
                marker: false,
                payload: Uint8Array.of(i & 255, (i >>> 8) & 255, i >>> 16),
              });
              return { i, p, wire: tx.protectRtp(p) };
            });
            const order = sent.map((s, k) => ({
              s,
              key: k + (k >= dense ? (jitter[k - dense] as number) : 0),
            }));
            order.sort((a, b) => a.key - b.key);
            for (const { s } of order) {
              const r = rx.unprotectRtp(s.wire);
              if (!r.ok) throw new Error(`${r.reason} at index ${s.i}`);
              expect(toHex(r.value)).toBe(toHex(s.p));
            }
          },
        ),
        { numRuns: 25 },
      );
    });

    test(`${name}: a retransmission protected later is byte-identical to the first sending`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 0xffff }),
          fc.integer({ min: 1, max: 2000 }),
          fc.nat(),
          (start, count, pick) => {
            const { tx } = link(profile);
            const packet = (k: number) =>
              buildRtp({
                seq: (start + k) % 65536,
                ssrc: 8,
                csrcs: [],
                ext: null,
                marker: false,
                payload: Uint8Array.of(k & 255),
              });
            const first: string[] = [];
            for (let k = 0; k < count; k++) first.push(toHex(tx.protectRtp(packet(k))));
            const k = pick % count;
            expect(toHex(tx.protectRtp(packet(k)))).toBe(first[k] as string);
            // and the stream goes on with the rollover counter it had
            const next = tx.protectRtp(packet(count));
            const { rx } = link(profile);
            for (const wire of first) expect(rx.unprotectRtp(hex(wire)).ok).toBe(true);
            expect(rx.unprotectRtp(next).ok).toBe(true);
          },
        ),
        { numRuns: 30 },
      );
    });

    test(`${name}: a packet from before the stream's first does not move the rollover counter`, () => {
      const { tx, rx } = link(profile);
      const packet = (seq: number) =>
        buildRtp({ seq, ssrc: 6, csrcs: [], ext: null, marker: false, payload: new Uint8Array(4) });
      expect(rx.unprotectRtp(tx.protectRtp(packet(10))).ok).toBe(true);
      expect(rx.unprotectRtp(tx.protectRtp(packet(65530)))).toEqual({
        ok: false,
        reason: "srtp-too-old",
      });
      expect(rx.unprotectRtp(tx.protectRtp(packet(11))).ok).toBe(true);
    });

    test(`${name}: replaying any earlier packet is refused and counted`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 0xffff }),
          fc.integer({ min: 1, max: 300 }),
          fc.nat(),
          fc.constantFrom(64, 128, 1024),
          (start, count, pick, replayWindow) => {
            const { tx, rx } = link(profile, replayWindow);
            const wires: Uint8Array[] = [];
            for (let k = 0; k < count; k++) {
              const p = buildRtp({
                seq: (start + k) % 65536,
                ssrc: 77,
                csrcs: [],
                ext: null,
                marker: false,
                payload: new Uint8Array(8).fill(k),
              });
              const wire = tx.protectRtp(p);
              wires.push(wire);
              expect(rx.unprotectRtp(wire).ok).toBe(true);
            }
            const k = pick % count;
            const r = rx.unprotectRtp(wires[k] as Uint8Array);
            const expected = count - 1 - k >= replayWindow ? "srtp-too-old" : "srtp-replay";
            expect(r).toEqual({ ok: false, reason: expected });
            expect(rx.rejects.count(expected)).toBe(1);
            // SRTCP likewise
            const rtcp = Uint8Array.of(0x80, 201, 0, 1, 0, 0, 0, 77);
            const first = tx.protectRtcp(rtcp);
            expect(rx.unprotectRtcp(first).ok).toBe(true);
            expect(rx.unprotectRtcp(first)).toEqual({ ok: false, reason: "srtcp-replay" });
          },
        ),
        { numRuns: 40 },
      );
    });

    test(`${name}: a single flipped bit anywhere in SRTP or SRTCP is refused`, () => {
      const { tx } = link(profile);
      const packet = buildRtp({
        seq: 1000,
        ssrc: 3,
        csrcs: [1, 2],
        ext: { profile: 0xbede, words: new Uint8Array(8).fill(1) },
        marker: true,
        payload: new Uint8Array(64).fill(9),
      });
      const wire = tx.protectRtp(packet);
      const rtcp = tx.protectRtcp(
        Uint8Array.of(0x81, 200, 0, 6, 0, 0, 0, 3, ...new Uint8Array(24).fill(4)),
      );
      fc.assert(
        fc.property(fc.nat(), fc.integer({ min: 0, max: 7 }), fc.boolean(), (at, bit, rtcpSide) => {
          // a receiver that has seen nothing, or one in the middle of the stream
          const { rx } = link(profile);
          const target = rtcpSide ? rtcp : wire;
          const flipped = target.slice();
          const i = at % flipped.length;
          flipped[i] = (flipped[i] as number) ^ (1 << bit);
          const r = rtcpSide ? rx.unprotectRtcp(flipped) : rx.unprotectRtp(flipped);
          expect(r.ok).toBe(false);
          expect(rx.rejects.count()).toBe(1);
          // the untouched packet still goes through afterwards: the refusal changed no state
          expect((rtcpSide ? rx.unprotectRtcp(target) : rx.unprotectRtp(target)).ok).toBe(true);
        }),
        { numRuns: 400 },
      );
    });

    test(`${name}: short, wrong-version and random inputs are refused with a reason, never thrown`, () => {
      const { rx } = link(profile);
      expect(rx.unprotectRtp(new Uint8Array(0))).toEqual({ ok: false, reason: "srtp-short" });
      expect(rx.unprotectRtp(new Uint8Array(40))).toEqual({
        ok: false,
        reason: "srtp-bad-version",
      });
      expect(rx.unprotectRtp(Uint8Array.of(0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))).toEqual({
        ok: false,
        reason: "srtp-short",
      });
      // extension header promised but missing, CSRCs past the end
      expect(rx.unprotectRtp(new Uint8Array(14).fill(0x90, 0, 1))).toEqual({
        ok: false,
        reason: "srtp-short",
      });
      expect(rx.unprotectRtp(new Uint8Array(30).fill(0x8f, 0, 1))).toEqual({
        ok: false,
        reason: "srtp-short",
      });
      expect(rx.unprotectRtcp(new Uint8Array(0))).toEqual({ ok: false, reason: "srtcp-short" });
      expect(rx.unprotectRtcp(new Uint8Array(40))).toEqual({
        ok: false,
        reason: "srtcp-bad-version",
      });
      expect(rx.unprotectRtcp(new Uint8Array(12).fill(0x80, 0, 1))).toEqual({
        ok: false,
        reason: "srtcp-short",
      });
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
          expect(rx.unprotectRtp(bytes).ok).toBe(false);
          expect(rx.unprotectRtcp(bytes).ok).toBe(false);
        }),
        { numRuns: 300 },
      );
    });

    test(`${name}: protect refuses what is not RTP/RTCP and output buffers that are too small`, () => {
      const { tx, rx } = link(profile);
      expect(() => tx.protectRtp(new Uint8Array(11))).toThrow(RangeError);
      expect(() => tx.protectRtp(new Uint8Array(20))).toThrow(RangeError);
      expect(() => tx.protectRtcp(new Uint8Array(7).fill(0x80))).toThrow(RangeError);
      const packet = buildRtp({
        seq: 1,
        ssrc: 1,
        csrcs: [],
        ext: null,
        marker: false,
        payload: new Uint8Array(10),
      });
      expect(() => tx.protectRtp(packet, new Uint8Array(packet.length))).toThrow(RangeError);
      const wire = tx.protectRtp(packet);
      expect(() => rx.unprotectRtp(wire, new Uint8Array(5))).toThrow(RangeError);
    });

    test(`${name}: removeSsrc starts a stream afresh`, () => {
      const { tx, rx } = link(profile);
      const packet = (seq: number) =>
        buildRtp({
          seq,
          ssrc: 42,
          csrcs: [],
          ext: null,
          marker: false,
          payload: new Uint8Array(4),
        });
      expect(rx.unprotectRtp(tx.protectRtp(packet(65535))).ok).toBe(true);
      expect(rx.unprotectRtp(tx.protectRtp(packet(3))).ok).toBe(true); // ROC 1 on both sides
      tx.removeSsrc(42);
      const restarted = tx.protectRtp(packet(4)); // ROC 0 again: the receiver still expects ROC 1
      expect(rx.unprotectRtp(restarted)).toEqual({ ok: false, reason: "srtp-auth-failed" });
      rx.removeSsrc(42);
      expect(rx.unprotectRtp(restarted).ok).toBe(true);
    });
  }
});

describe("interoperability with werift-rtp", () => {
  const weriftSessions = (profile: SrtpProfile) => {
    const keys = splitSrtpKeyingMaterial(profile, material(profile), "server");
    const config = {
      keys: {
        localMasterKey: Buffer.from(keys.localKey),
        localMasterSalt: Buffer.from(keys.localSalt),
        remoteMasterKey: Buffer.from(keys.remoteKey),
        remoteMasterSalt: Buffer.from(keys.remoteSalt),
      },
      profile: profile as WeriftProfile,
    };
    return { srtp: new SrtpSession(config), srtcp: new SrtcpSession(config) };
  };

  /** A header werift can parse: CSRCs and a well-formed one-byte extension (RFC 8285). */
  const weriftShape = fc.record({
    csrcs: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 4 }),
    ext: fc.option(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 }),
    ),
    payload: fc.uint8Array({ minLength: 1, maxLength: 1200 }),
  });

  const oneByteExtension = (elements: readonly Uint8Array[]) => {
    const bytes: number[] = [];
    elements.forEach((e, i) => {
      bytes.push(((i + 1) << 4) | (e.length - 1), ...e);
    });
    while (bytes.length % 4 !== 0) bytes.push(0);
    return { profile: 0xbede, words: Uint8Array.from(bytes) };
  };

  for (const profile of PROFILES) {
    const name = NAMES[profile];

    test(`${name}: RTP from us decrypts in werift, and werift's in ours, across a sequence wrap`, () => {
      fc.assert(
        fc.property(fc.array(weriftShape, { minLength: 20, maxLength: 30 }), (shapes) => {
          const m = material(profile);
          const ours = createSrtpPair(profile, m, "client");
          const theirs = weriftSessions(profile);
          shapes.forEach((s, k) => {
            const seq = (65520 + k) % 65536;
            const packet = buildRtp({
              seq,
              ssrc: 0x11223344,
              csrcs: s.csrcs,
              ext: s.ext === null ? null : oneByteExtension(s.ext),
              marker: k === 0,
              payload: s.payload,
            });
            const back = theirs.srtp.decrypt(Buffer.from(ours.protector.protectRtp(packet)));
            expect(toHex(back)).toBe(toHex(packet));

            const parsed = RtpPacket.deSerialize(Buffer.from(packet));
            const header: RtpHeader = parsed.header;
            const wire = theirs.srtp.encrypt(parsed.payload, header);
            const r = ours.unprotector.unprotectRtp(wire);
            if (!r.ok) throw new Error(`${r.reason} at seq ${seq}`);
            expect(toHex(r.value)).toBe(
              toHex(Buffer.concat([header.serialize(header.serializeSize), parsed.payload])),
            );
          });
        }),
        { numRuns: 20 },
      );
    });

    test(`${name}: RTCP from us decrypts in werift, and werift's in ours`, () => {
      fc.assert(
        fc.property(fc.array(rtcpPacket, { minLength: 1, maxLength: 10 }), (packets) => {
          const ours = createSrtpPair(profile, material(profile), "client");
          const theirs = weriftSessions(profile);
          for (const packet of packets) {
            expect(
              toHex(theirs.srtcp.decrypt(Buffer.from(ours.protector.protectRtcp(packet)))),
            ).toBe(toHex(packet));
            const r = ours.unprotector.unprotectRtcp(theirs.srtcp.encrypt(Buffer.from(packet)));
            if (!r.ok) throw new Error(r.reason);
            expect(toHex(r.value)).toBe(toHex(packet));
          }
        }),
        { numRuns: 20 },
      );
    });
  }
});

describe("fuzz", () => {
  for (const target of targets) {
    test(`${target.name}: 20,000 inputs, none throws, each accepted or refused with a reason`, () => {
      const report = runFuzz(target, 20_000, 0x5eed);
      const refused = Object.values(report.rejected).reduce((a, b) => a + b, 0);
      expect(report.accepted + refused).toBe(20_000);
      expect(refused).toBeGreaterThan(0);
      for (const reason of Object.keys(report.rejected)) expect(reason).toMatch(/^srtc?p-[a-z-]+$/);
    }, 30_000);
  }
});
