/**
 * DTLS hellos: Chromium 156's real ClientHello read (suites, use_srtp, EMS, groups, signature
 * algorithms, a DTLS 1.3 offer) and answered with a 1.2 choice; every truncation refused without
 * a throw; the ServerHello and HelloVerifyRequest bodies laid out as RFC 6347/5246/5764 say; our
 * own ClientHello read back and accepted, and the client's readers of the server's hellos.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256,
  type ClientHello,
  chooseForClientHello,
  parseClientHello,
  parseHelloVerifyRequest,
  parseServerHello,
  SIG_ECDSA_SECP256R1_SHA256,
  writeClientHello,
  writeHelloVerifyRequest,
  writeServerHello,
} from "../../src/webrtc/dtls/hello.ts";
import {
  HandshakeReassembler,
  parseHandshakeFragments,
  parseRecords,
} from "../../src/webrtc/dtls/record.ts";

/** Chromium's ClientHello body, reassembled from the captured flight. */
function chromiumHello(): Uint8Array {
  const fixture = JSON.parse(
    readFileSync(join(import.meta.dir, "fixtures", "chromium-client-hello.json"), "utf8"),
  ) as {
    datagrams: string[];
  };
  const r = new HandshakeReassembler();
  for (const h of fixture.datagrams) {
    const records = parseRecords(new Uint8Array(Buffer.from(h, "hex")));
    if (!records.ok) throw new Error(records.reason);
    for (const rec of records.value) {
      const f = parseHandshakeFragments(rec.fragment);
      if (!f.ok) throw new Error(f.reason);
      for (const x of f.value) r.add(x);
    }
  }
  const m = r.pop();
  if (m === undefined) throw new Error("no ClientHello");
  return m.body;
}

describe("DTLS hellos", () => {
  test("Chromium's ClientHello: what it offers, and the 1.2 answer (GCM SRTP preferred)", () => {
    const r = parseClientHello(chromiumHello());
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const h = r.value;
    expect(h.version).toBe(0xfefd);
    expect(h.cookie.length).toBe(0);
    expect(h.cipherSuites).toContain(CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256);
    expect(h.srtpProfiles).toEqual(expect.arrayContaining([0x0001, 0x0007]));
    expect(h.extendedMasterSecret).toBe(true);
    expect(h.supportedGroups).toContain(23);
    expect(h.signatureAlgorithms).toContain(SIG_ECDSA_SECP256R1_SHA256);
    expect(h.supportedVersions).toEqual(expect.arrayContaining([0xfefc, 0xfefd])); // 1.3 and 1.2
    expect(chooseForClientHello(h, [0x0007, 0x0001])).toEqual({ ok: true, srtpProfile: 0x0007 });
    expect(chooseForClientHello(h, [0x0001])).toEqual({ ok: true, srtpProfile: 0x0001 });
  });

  test("every truncation of the ClientHello is refused or read, never thrown", () => {
    const body = chromiumHello();
    let refused = 0;
    for (let n = 0; n < body.length; n++) {
      const r = parseClientHello(body.subarray(0, n));
      if (!r.ok) {
        refused++;
        expect(r.reason).toBe("dtls-bad-hello");
      }
    }
    expect(refused).toBeGreaterThan(body.length - 60);
  });

  test("what a 1.2 server cannot answer, with the reason", () => {
    const r = parseClientHello(chromiumHello());
    if (!r.ok) throw new Error(r.reason);
    const h = r.value;
    const why = (x: ClientHello, pref = [7, 1]) => {
      const c = chooseForClientHello(x, pref);
      return c.ok ? "ok" : c.why;
    };
    expect(why({ ...h, supportedVersions: [0xfefc] })).toContain("DTLS 1.2");
    expect(why({ ...h, cipherSuites: [0x1301] })).toContain("AES_128_GCM");
    expect(why({ ...h, supportedGroups: [29] })).toContain("secp256r1");
    expect(why({ ...h, extendedMasterSecret: false })).toContain("extended_master_secret");
    expect(why(h, [0x0002])).toContain("SRTP");
  });

  test("ServerHello and HelloVerifyRequest bodies", () => {
    const random = new Uint8Array(32).fill(7);
    const sh = writeServerHello(random, CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256, 0x0007);
    expect([sh[0], sh[1]]).toEqual([0xfe, 0xfd]);
    expect([...sh.subarray(2, 34)]).toEqual([...random]);
    expect(sh[34]).toBe(0); // no session id
    expect([sh[35], sh[36], sh[37]]).toEqual([0xc0, 0x2b, 0]); // suite, null compression
    const ext = Buffer.from(sh.subarray(40)).toString("hex");
    expect(((sh[38] as number) << 8) | (sh[39] as number)).toBe(sh.length - 40);
    expect(ext).toContain("ff01000100"); // renegotiation_info, empty
    expect(ext).toContain("00170000"); // extended_master_secret
    expect(ext).toContain("000e00050002000700"); // use_srtp: one profile 0x0007, no MKI
    const hvr = writeHelloVerifyRequest(Uint8Array.of(1, 2, 3));
    expect([...hvr]).toEqual([0xfe, 0xfd, 3, 1, 2, 3]);
    expect(() => writeHelloVerifyRequest(new Uint8Array(256))).toThrow(RangeError);
  });

  test("our ClientHello: read back, and a 1.2 server takes it; with a cookie; every truncation refused", () => {
    const random = new Uint8Array(32).fill(4);
    const body = writeClientHello(random, Uint8Array.of(9, 9, 9), [0x0007, 0x0001]);
    const h = parseClientHello(body);
    if (!h.ok) throw new Error(h.reason);
    expect(h.value.version).toBe(0xfefd);
    expect([...h.value.random]).toEqual([...random]);
    expect([...h.value.cookie]).toEqual([9, 9, 9]);
    expect(h.value.cipherSuites).toEqual([CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256]);
    expect(h.value.srtpProfiles).toEqual([0x0007, 0x0001]);
    expect(h.value.extendedMasterSecret).toBe(true);
    expect(h.value.supportedGroups).toEqual([23]);
    expect(h.value.signatureAlgorithms).toEqual([SIG_ECDSA_SECP256R1_SHA256]);
    expect(chooseForClientHello(h.value, [0x0001, 0x0007])).toEqual({ ok: true, srtpProfile: 1 });
    // a hello may end before its extensions (RFC 5246 §7.4.1.2): that one cut is read, no other
    const bare = 2 + 32 + 1 + 4 + 2 + 2 + 2;
    for (let n = 0; n < body.length; n++)
      expect(parseClientHello(body.subarray(0, n)).ok).toBe(n === bare);
    expect(() => writeClientHello(random, new Uint8Array(0), [])).toThrow(RangeError);
  });

  test("the client reads ServerHello and HelloVerifyRequest; truncations and trailing bytes are refused", () => {
    const random = new Uint8Array(32).fill(5);
    const body = writeServerHello(random, CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256, 0x0001);
    const sh = parseServerHello(body);
    if (!sh.ok) throw new Error(sh.reason);
    expect(sh.value).toEqual({
      version: 0xfefd,
      random,
      cipherSuite: CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256,
      compression: 0,
      srtpProfile: 0x0001,
      extendedMasterSecret: true,
    });
    for (let n = 0; n < body.length; n++)
      expect(parseServerHello(body.subarray(0, n)).ok).toBe(n === 2 + 32 + 1 + 2 + 1);
    expect(parseServerHello(Uint8Array.from([...body, 0])).ok).toBe(false);
    const cookie = parseHelloVerifyRequest(writeHelloVerifyRequest(Uint8Array.of(1, 2)));
    expect(cookie.ok && [...cookie.value]).toEqual([1, 2]);
    expect(parseHelloVerifyRequest(Uint8Array.of(0xfe, 0xff, 0)).ok).toBe(false); // empty cookie
    expect(parseHelloVerifyRequest(Uint8Array.of(0xfe, 0xff, 2, 1)).ok).toBe(false);
  });
});
