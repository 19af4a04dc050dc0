/**
 * DTLS handshake message bodies after the hellos: a ServerKeyExchange signed with our
 * certificate's key verifies with the key read back from the Certificate message; round trips of
 * every body; every truncation refused without a throw; the hello cookie binds address and random.
 */
import { describe, expect, test } from "bun:test";
import { generateCertificate, publicKeyOf } from "../../src/webrtc/dtls/certificate.ts";
import { EcdhP256, signEcdsaSha256, verifyEcdsaSha256 } from "../../src/webrtc/dtls/crypto.ts";
import {
  acceptsEcdsaCertificate,
  ecdheParams,
  helloCookie,
  parseCertificate,
  parseCertificateVerify,
  parseClientKeyExchange,
  parseServerKeyExchange,
  serverKeyExchangeSigned,
  writeCertificate,
  writeCertificateRequest,
  writeCertificateVerify,
  writeClientKeyExchange,
  writeServerKeyExchange,
} from "../../src/webrtc/dtls/messages.ts";

describe("DTLS handshake messages", () => {
  test("Certificate → ServerKeyExchange: the signature over both randoms and the ECDHE point verifies with the certificate's key", () => {
    const cert = generateCertificate();
    const certs = parseCertificate(writeCertificate([cert.der]));
    expect(certs.ok && certs.value.map((c) => Buffer.from(c).toString("hex"))).toEqual([
      Buffer.from(cert.der).toString("hex"),
    ]);
    const ecdh = new EcdhP256();
    const cr = new Uint8Array(32).fill(1);
    const sr = new Uint8Array(32).fill(2);
    const params = ecdheParams(ecdh.publicKey);
    const body = writeServerKeyExchange(
      params,
      signEcdsaSha256(cert.privateKey, serverKeyExchangeSigned(cr, sr, params)),
    );
    const ske = parseServerKeyExchange(body);
    expect(ske.ok).toBe(true);
    if (!ske.ok || !certs.ok) return;
    expect(ske.value.signatureAlgorithm).toBe(0x0403);
    expect([...ske.value.publicKey]).toEqual([...ecdh.publicKey]);
    const key = publicKeyOf(certs.value[0] as Uint8Array);
    expect(key).toBeDefined();
    if (key === undefined) return;
    expect(
      verifyEcdsaSha256(
        key,
        serverKeyExchangeSigned(cr, sr, ske.value.params),
        ske.value.signature,
      ),
    ).toBe(true);
    // the randoms are bound: a replayed signature does not verify for another handshake
    expect(
      verifyEcdsaSha256(
        key,
        serverKeyExchangeSigned(sr, cr, ske.value.params),
        ske.value.signature,
      ),
    ).toBe(false);
  });

  test("ClientKeyExchange, CertificateVerify and CertificateRequest bodies", () => {
    const ecdh = new EcdhP256();
    const cke = parseClientKeyExchange(writeClientKeyExchange(ecdh.publicKey));
    expect(cke.ok && [...cke.value]).toEqual([...ecdh.publicKey]);
    const sig = Uint8Array.of(0x30, 3, 2, 1, 0);
    const cv = parseCertificateVerify(writeCertificateVerify(sig));
    expect(cv.ok && [cv.value.algorithm, [...cv.value.signature]]).toEqual([0x0403, [...sig]]);
    // ecdsa_sign (64), one signature algorithm (ecdsa_secp256r1_sha256), no authorities
    expect([...writeCertificateRequest()]).toEqual([1, 64, 0, 2, 4, 3, 0, 0]);
    const takes = (b: number[]) => {
      const r = acceptsEcdsaCertificate(Uint8Array.from(b));
      return r.ok ? r.value : r.reason;
    };
    expect(takes([...writeCertificateRequest()])).toBe(true);
    // OpenSSL's: rsa_sign, dss_sign, ecdsa_sign; many algorithms; no authorities
    expect(takes([3, 1, 2, 64, 0, 6, 4, 3, 8, 4, 4, 1, 0, 0])).toBe(true);
    expect(takes([1, 1, 0, 2, 4, 3, 0, 0])).toBe(false); // rsa_sign only
    expect(takes([1, 64, 0, 2, 8, 4, 0, 0])).toBe(false); // no ecdsa_secp256r1_sha256
    expect(takes([1, 64, 0, 3, 4, 3, 0, 0, 0])).toBe("dtls-bad-message"); // odd algorithm list
    expect(takes([1, 64, 0, 2, 4, 3, 0, 1])).toBe("dtls-bad-message"); // authorities overrun
  });

  test("every truncation of every body is refused or read, never thrown", () => {
    const cert = generateCertificate();
    const ecdh = new EcdhP256();
    const params = ecdheParams(ecdh.publicKey);
    const bodies: [Uint8Array, (b: Uint8Array) => { ok: boolean }][] = [
      [writeCertificate([cert.der, cert.der]), parseCertificate],
      [writeServerKeyExchange(params, new Uint8Array(71)), parseServerKeyExchange],
      [writeClientKeyExchange(ecdh.publicKey), parseClientKeyExchange],
      [writeCertificateVerify(new Uint8Array(70)), parseCertificateVerify],
      [writeCertificateRequest(), acceptsEcdsaCertificate],
    ];
    for (const [body, parse] of bodies) {
      expect(parse(body).ok).toBe(true);
      for (let n = 0; n < body.length; n++) expect(parse(body.subarray(0, n)).ok).toBe(false);
    }
  });

  test("the hello cookie binds the secret, the address and the client random", () => {
    const secret = new Uint8Array(32).fill(9);
    const random = new Uint8Array(32).fill(1);
    const c = helloCookie(secret, "127.0.0.1:5000", random);
    expect(c.length).toBe(32);
    expect(Buffer.from(helloCookie(secret, "127.0.0.1:5000", random)).equals(Buffer.from(c))).toBe(
      true,
    );
    expect(Buffer.from(helloCookie(secret, "127.0.0.1:5001", random)).equals(Buffer.from(c))).toBe(
      false,
    );
    expect(
      Buffer.from(helloCookie(secret, "127.0.0.1:5000", new Uint8Array(32))).equals(Buffer.from(c)),
    ).toBe(false);
    expect(
      Buffer.from(helloCookie(new Uint8Array(32), "127.0.0.1:5000", random)).equals(Buffer.from(c)),
    ).toBe(false);
  });
});
