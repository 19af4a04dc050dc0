/**
 * The bodies of the DTLS 1.2 handshake messages after the hellos, for
 * TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 on P-256 (RFC 5246 §7.4, RFC 8422 §5): Certificate,
 * ServerKeyExchange (named curve secp256r1, ecdsa_secp256r1_sha256 signature over both randoms
 * and the parameters), CertificateRequest, ClientKeyExchange, CertificateVerify, Finished; and
 * the server's stateless cookie (RFC 6347 §4.2.1). Parsers return `Parsed` and never throw.
 */
import { createHmac } from "node:crypto";
import { accept, type Parsed, reject } from "../reject.ts";
import { GROUP_SECP256R1, SIG_ECDSA_SECP256R1_SHA256 } from "./hello.ts";

/** Why a handshake message body was refused. */
export type MessageReason = "dtls-bad-message";

function u24(n: number): number[] {
  return [(n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function readU24(b: Uint8Array, at: number): number {
  return ((b[at] as number) << 16) | ((b[at + 1] as number) << 8) | (b[at + 2] as number);
}

/** A Certificate body carrying the DER certificates `chain` (leaf first). */
export function writeCertificate(chain: readonly Uint8Array[]): Uint8Array {
  const total = chain.reduce((n, c) => n + 3 + c.length, 0);
  const out = [...u24(total)];
  for (const c of chain) out.push(...u24(c.length), ...c);
  return Uint8Array.from(out);
}

/** The DER certificates of a Certificate body (views), leaf first. */
export function parseCertificate(body: Uint8Array): Parsed<Uint8Array[], MessageReason> {
  if (body.length < 3 || readU24(body, 0) !== body.length - 3) return reject("dtls-bad-message");
  const out: Uint8Array[] = [];
  for (let at = 3; at < body.length; ) {
    if (at + 3 > body.length) return reject("dtls-bad-message");
    const n = readU24(body, at);
    if (at + 3 + n > body.length) return reject("dtls-bad-message");
    out.push(body.subarray(at + 3, at + 3 + n));
    at += 3 + n;
  }
  return accept(out);
}

/** The ECDHE parameters of a ServerKeyExchange: named curve secp256r1 and the public point. */
export function ecdheParams(publicKey: Uint8Array): Uint8Array {
  return Uint8Array.from([
    3,
    GROUP_SECP256R1 >>> 8,
    GROUP_SECP256R1 & 0xff,
    publicKey.length,
    ...publicKey,
  ]);
}

/** What a ServerKeyExchange signs: client random, server random, the parameters. */
export function serverKeyExchangeSigned(
  clientRandom: Uint8Array,
  serverRandom: Uint8Array,
  params: Uint8Array,
): Uint8Array {
  return Buffer.concat([clientRandom, serverRandom, params]);
}

/** A ServerKeyExchange body: `params` (from `ecdheParams`) and an ECDSA-SHA256 `signature`. */
export function writeServerKeyExchange(params: Uint8Array, signature: Uint8Array): Uint8Array {
  return Uint8Array.from([
    ...params,
    SIG_ECDSA_SECP256R1_SHA256 >>> 8,
    SIG_ECDSA_SECP256R1_SHA256 & 0xff,
    signature.length >>> 8,
    signature.length & 0xff,
    ...signature,
  ]);
}

/** A ServerKeyExchange read: the server's public point, the parameters it signed, the signature. */
export interface ServerKeyExchange {
  readonly publicKey: Uint8Array;
  readonly params: Uint8Array;
  readonly signatureAlgorithm: number;
  readonly signature: Uint8Array;
}

/** Reads a ServerKeyExchange body (named curve secp256r1 only). */
export function parseServerKeyExchange(body: Uint8Array): Parsed<ServerKeyExchange, MessageReason> {
  if (
    body.length < 4 ||
    body[0] !== 3 ||
    (((body[1] as number) << 8) | (body[2] as number)) !== GROUP_SECP256R1
  )
    return reject("dtls-bad-message", "not a named-curve secp256r1 key exchange");
  const n = body[3] as number;
  const end = 4 + n;
  if (end + 4 > body.length) return reject("dtls-bad-message");
  const signatureAlgorithm = ((body[end] as number) << 8) | (body[end + 1] as number);
  const sigLength = ((body[end + 2] as number) << 8) | (body[end + 3] as number);
  if (end + 4 + sigLength !== body.length) return reject("dtls-bad-message");
  return accept({
    publicKey: body.subarray(4, end),
    params: body.subarray(0, end),
    signatureAlgorithm,
    signature: body.subarray(end + 4),
  });
}

/** A CertificateRequest body: ecdsa_sign certificates, ecdsa_secp256r1_sha256, no authorities. */
export function writeCertificateRequest(): Uint8Array {
  return Uint8Array.from([
    1,
    64,
    0,
    2,
    SIG_ECDSA_SECP256R1_SHA256 >>> 8,
    SIG_ECDSA_SECP256R1_SHA256 & 0xff,
    0,
    0,
  ]);
}

/** A ClientKeyExchange body: the client's ECDHE public point. */
export function writeClientKeyExchange(publicKey: Uint8Array): Uint8Array {
  return Uint8Array.from([publicKey.length, ...publicKey]);
}

/** The client's public point from a ClientKeyExchange body. */
export function parseClientKeyExchange(body: Uint8Array): Parsed<Uint8Array, MessageReason> {
  if (body.length < 1 || (body[0] as number) !== body.length - 1) return reject("dtls-bad-message");
  return accept(body.subarray(1));
}

/** A CertificateVerify body: ecdsa_secp256r1_sha256 and `signature`. */
export function writeCertificateVerify(signature: Uint8Array): Uint8Array {
  return Uint8Array.from([
    SIG_ECDSA_SECP256R1_SHA256 >>> 8,
    SIG_ECDSA_SECP256R1_SHA256 & 0xff,
    signature.length >>> 8,
    signature.length & 0xff,
    ...signature,
  ]);
}

/** The algorithm and signature of a CertificateVerify body. */
export function parseCertificateVerify(
  body: Uint8Array,
): Parsed<{ readonly algorithm: number; readonly signature: Uint8Array }, MessageReason> {
  if (body.length < 4) return reject("dtls-bad-message");
  const n = ((body[2] as number) << 8) | (body[3] as number);
  if (4 + n !== body.length) return reject("dtls-bad-message");
  return accept({
    algorithm: ((body[0] as number) << 8) | (body[1] as number),
    signature: body.subarray(4),
  });
}

/**
 * The stateless cookie a server sends in HelloVerifyRequest: HMAC-SHA256 under `secret` of the
 * client's address (`peer`, as text) and its ClientHello random, cut to 32 bytes. A ClientHello
 * that comes back with it proves the address is reachable, and the server kept nothing meanwhile.
 */
export function helloCookie(
  secret: Uint8Array,
  peer: string,
  clientRandom: Uint8Array,
): Uint8Array {
  return new Uint8Array(createHmac("sha256", secret).update(peer).update(clientRandom).digest());
}

/**
 * Whether a CertificateRequest body is well formed and takes what this stack signs with: an
 * ecdsa_sign certificate and ecdsa_secp256r1_sha256.
 */
export function acceptsEcdsaCertificate(body: Uint8Array): Parsed<boolean, MessageReason> {
  const types = body[0];
  if (types === undefined || 1 + types + 2 > body.length) return reject("dtls-bad-message");
  const algAt = 1 + types;
  const algBytes = ((body[algAt] as number) << 8) | (body[algAt + 1] as number);
  const authAt = algAt + 2 + algBytes;
  if (algBytes % 2 !== 0 || authAt + 2 > body.length) return reject("dtls-bad-message");
  const authBytes = ((body[authAt] as number) << 8) | (body[authAt + 1] as number);
  if (authAt + 2 + authBytes !== body.length) return reject("dtls-bad-message");
  let ecdsaSign = false;
  for (let i = 1; i <= types; i++) if (body[i] === 64) ecdsaSign = true;
  let sha256Ecdsa = false;
  for (let i = algAt + 2; i < authAt; i += 2)
    if ((((body[i] as number) << 8) | (body[i + 1] as number)) === SIG_ECDSA_SECP256R1_SHA256)
      sha256Ecdsa = true;
  return accept(ecdsaSign && sha256Ecdsa);
}
