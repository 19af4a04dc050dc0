/**
 * The DTLS cryptography against published vectors and against OpenSSL: the TLS 1.2 PRF
 * (the P_SHA256 vector from the TLS working group, and `openssl kdf TLS1-PRF` on random inputs),
 * HMAC (RFC 4231, RFC 2202 for the HMAC-SHA1 STUN uses), AES-128-GCM record protection, ECDHE and
 * ECDSA, and the self-signed certificate (parsed, verified and fingerprinted by `openssl x509`).
 */
import { describe, expect, test } from "bun:test";
import { createHmac, type KeyObject, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import {
  fingerprintOf,
  generateCertificate,
  publicKeyOf,
  sameFingerprint,
} from "../../src/webrtc/dtls/certificate.ts";
import {
  EcdhP256,
  exportKeyingMaterial,
  extendedMasterSecret,
  GcmRecordCipher,
  keyBlock,
  prf,
  signEcdsaSha256,
  verifyData,
  verifyEcdsaSha256,
} from "../../src/webrtc/dtls/crypto.ts";

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const openssl = Bun.which("openssl");
if (openssl === null && process.env.CI === "true")
  throw new Error("CI=true but openssl is missing: apt-get install openssl");

describe("TLS 1.2 PRF (P_SHA256)", () => {
  test("the TLS working group's published vector", () => {
    const out = prf(
      hex("9bbe436ba940f017b17652849a71db35"),
      "test label",
      hex("a0ba9f936cda311827a6f796ffd5198c"),
      100,
    );
    expect(toHex(out)).toBe(
      "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a" +
        "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab" +
        "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701" +
        "87347b66",
    );
  });

  test.skipIf(openssl === null)(
    "equals `openssl kdf TLS1-PRF` on random secrets, seeds and lengths",
    () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 1, maxLength: 64 }),
          fc.uint8Array({ minLength: 1, maxLength: 80 }),
          fc.integer({ min: 1, max: 150 }),
          (secret, seed, length) => {
            const r = Bun.spawnSync([
              "openssl",
              "kdf",
              "-keylen",
              String(length),
              ...["-kdfopt", "digest:SHA256", "-kdfopt", `hexsecret:${toHex(secret)}`],
              ...["-kdfopt", "seed:a label", "-kdfopt", `hexseed:${toHex(seed)}`],
              "TLS1-PRF",
            ]);
            const theirs = r.stdout.toString().trim().replace(/:/g, "").toLowerCase();
            expect(toHex(prf(secret, "a label", seed, length))).toBe(theirs);
          },
        ),
        { numRuns: 25, seed: 16 },
      );
    },
  );

  test("the derived values have their sizes and depend on every input", () => {
    const ms = extendedMasterSecret(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
    expect(ms.length).toBe(48);
    const cr = new Uint8Array(32).fill(3);
    const sr = new Uint8Array(32).fill(4);
    const kb = keyBlock(ms, cr, sr);
    expect([kb.clientKey, kb.serverKey, kb.clientIv, kb.serverIv].map((b) => b.length)).toEqual([
      16, 16, 4, 4,
    ]);
    // the key block is PRF(master, "key expansion", server_random + client_random)
    expect(toHex(kb.clientKey)).toBe(
      toHex(prf(ms, "key expansion", new Uint8Array([...sr, ...cr]), 16)),
    );
    expect(verifyData(ms, "client finished", new Uint8Array(32)).length).toBe(12);
    expect(toHex(verifyData(ms, "client finished", new Uint8Array(32)))).not.toBe(
      toHex(verifyData(ms, "server finished", new Uint8Array(32))),
    );
    const km = exportKeyingMaterial(ms, cr, sr, "EXTRACTOR-dtls_srtp", 60);
    expect(toHex(km)).toBe(
      toHex(prf(ms, "EXTRACTOR-dtls_srtp", new Uint8Array([...cr, ...sr]), 60)),
    );
  });
});

describe("HMAC vectors", () => {
  test("RFC 4231 test case 2 (HMAC-SHA256) and RFC 2202 test case 2 (HMAC-SHA1)", () => {
    const data = new TextEncoder().encode("what do ya want for nothing?");
    expect(createHmac("sha256", "Jefe").update(data).digest("hex")).toBe(
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
    expect(createHmac("sha1", "Jefe").update(data).digest("hex")).toBe(
      "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
    );
  });
});

describe("AES-128-GCM records", () => {
  const key = hex("000102030405060708090a0b0c0d0e0f");
  const iv = hex("a0a1a2a3");

  test("seal and open round-trip any plaintext at any epoch and 48-bit sequence number", () => {
    const tx = new GcmRecordCipher(key, iv);
    const rx = new GcmRecordCipher(key, iv);
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 1500 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 2 ** 48 - 1 }),
        (plain, epoch, seq) => {
          const sealed = tx.seal(epoch, seq, 23, 0xfefd, plain);
          expect(sealed.length).toBe(plain.length + 24);
          expect(toHex(rx.open(epoch, seq, 23, 0xfefd, sealed) ?? Uint8Array.of(1))).toBe(
            toHex(plain),
          );
        },
      ),
      { numRuns: 300, seed: 16 },
    );
  });

  test("a flipped bit, another sequence number, type or version, or a short fragment fails", () => {
    const c = new GcmRecordCipher(key, iv);
    const sealed = c.seal(1, 7, 23, 0xfefd, new TextEncoder().encode("hello"));
    for (let i = 0; i < sealed.length; i++) {
      const bad = sealed.slice();
      bad[i] = (bad[i] as number) ^ 1;
      expect(c.open(1, 7, 23, 0xfefd, bad)).toBeUndefined();
    }
    expect(c.open(1, 8, 23, 0xfefd, sealed)).toBeUndefined();
    expect(c.open(2, 7, 23, 0xfefd, sealed)).toBeUndefined();
    expect(c.open(1, 7, 22, 0xfefd, sealed)).toBeUndefined();
    expect(c.open(1, 7, 23, 0xfeff, sealed)).toBeUndefined();
    expect(c.open(1, 7, 23, 0xfefd, sealed.subarray(0, 23))).toBeUndefined();
  });
});

describe("ECDHE and ECDSA on P-256", () => {
  test("both sides of an exchange get the same secret; a bad point is refused", () => {
    const a = new EcdhP256();
    const b = new EcdhP256();
    expect(a.publicKey.length).toBe(65);
    expect(toHex(a.computeSecret(b.publicKey) as Uint8Array)).toBe(
      toHex(b.computeSecret(a.publicKey) as Uint8Array),
    );
    const bad = b.publicKey.slice();
    bad[64] = (bad[64] as number) ^ 1; // off the curve
    expect(a.computeSecret(bad)).toBeUndefined();
    expect(a.computeSecret(b.publicKey.subarray(0, 33))).toBeUndefined();
  });

  test("a signature verifies with the certificate's key and fails on other data or garbage", () => {
    const cert = generateCertificate();
    const key = publicKeyOf(cert.der);
    expect(key).toBeDefined();
    const data = new TextEncoder().encode("server key exchange params");
    const sig = signEcdsaSha256(cert.privateKey, data);
    expect(verifyEcdsaSha256(key as KeyObject, data, sig)).toBe(true);
    expect(verifyEcdsaSha256(key as KeyObject, data.slice(1), sig)).toBe(false);
    expect(verifyEcdsaSha256(key as KeyObject, data, sig.slice(1))).toBe(false);
  });
});

describe("the self-signed certificate", () => {
  test("node:crypto parses it, it is self-signed and verifies, its fingerprint is SHA-256 of the DER", () => {
    const cert = generateCertificate({ commonName: "test peer" });
    const x = new X509Certificate(cert.der);
    expect(x.subject).toBe("CN=test peer");
    expect(x.issuer).toBe("CN=test peer");
    expect(x.verify(x.publicKey)).toBe(true);
    expect(cert.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(cert.fingerprint).toBe(x.fingerprint256);
    expect(fingerprintOf(cert.der)).toBe(cert.fingerprint);
    expect(sameFingerprint(cert.fingerprint, cert.fingerprint.toLowerCase())).toBe(true);
    expect(sameFingerprint(cert.fingerprint, fingerprintOf(generateCertificate().der))).toBe(false);
    expect(x.validFrom).toContain("2020");
    expect(x.validTo).toContain("2049");
  });

  test.skipIf(openssl === null)(
    "OpenSSL reads it as an X.509 v3 ECDSA P-256 certificate with the same fingerprint",
    () => {
      const cert = generateCertificate();
      const dir = mkdtempSync(join(tmpdir(), "sansio-cert-"));
      try {
        const file = join(dir, "cert.der");
        writeFileSync(file, cert.der);
        const r = Bun.spawnSync([
          "openssl",
          "x509",
          "-inform",
          "DER",
          "-in",
          file,
          "-noout",
          "-text",
          "-fingerprint",
          "-sha256",
        ]);
        const out = r.stdout.toString();
        expect(r.exitCode).toBe(0);
        expect(out).toContain("Version: 3 (0x2)");
        expect(out).toContain("Signature Algorithm: ecdsa-with-SHA256");
        expect(out).toContain("NIST CURVE: P-256");
        expect(out).toContain(`sha256 Fingerprint=${cert.fingerprint}`);
        writeFileSync(join(dir, "cert.pem"), new X509Certificate(cert.der).toString());
        const again = Bun.spawnSync([
          "openssl",
          "verify",
          "-no_check_time",
          "-CAfile",
          join(dir, "cert.pem"),
          join(dir, "cert.pem"),
        ]);
        expect(again.exitCode).toBe(0);
        expect(again.stdout.toString()).toContain("OK");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test("garbage is not a public key", () => {
    expect(publicKeyOf(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]))).toBeUndefined();
    expect(publicKeyOf(new Uint8Array(0))).toBeUndefined();
  });
});
