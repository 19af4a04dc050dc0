/**
 * The cryptography of DTLS 1.2 with TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, on synchronous
 * node:crypto: the TLS 1.2 PRF (P_SHA256, RFC 5246 §5), the extended master secret (RFC 7627),
 * the key block, Finished verify data, the keying-material exporter (RFC 5705), AES-128-GCM
 * record protection (RFC 5288 as DTLS uses it, RFC 6347 §4.1.2.1), ECDHE on P-256 and ECDSA with
 * SHA-256. Pure functions and small objects: no I/O, no clock.
 */
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  type ECDH,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";

const encoder = new TextEncoder();

/** SHA-256 of `data`. */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

function hmac(key: Uint8Array, a: Uint8Array, b?: Uint8Array): Uint8Array {
  const h = createHmac("sha256", key).update(a);
  if (b !== undefined) h.update(b);
  return new Uint8Array(h.digest());
}

/** The TLS 1.2 PRF with SHA-256: `length` bytes of P_SHA256(secret, label + seed). */
export function prf(
  secret: Uint8Array,
  label: string,
  seed: Uint8Array,
  length: number,
): Uint8Array {
  const labelSeed = Buffer.concat([encoder.encode(label), seed]);
  const out = new Uint8Array(length);
  let a = hmac(secret, labelSeed); // A(1)
  for (let at = 0; at < length; at += 32) {
    const block = hmac(secret, a, labelSeed);
    out.set(block.subarray(0, Math.min(32, length - at)), at);
    a = hmac(secret, a);
  }
  return out;
}

/** The 48-byte extended master secret (RFC 7627 §4) from the premaster secret and session hash. */
export function extendedMasterSecret(preMaster: Uint8Array, sessionHash: Uint8Array): Uint8Array {
  return prf(preMaster, "extended master secret", sessionHash, 48);
}

/** The write keys and implicit IVs of AES-128-GCM (RFC 5246 §6.3; no MAC keys for AEAD). */
export interface KeyBlock {
  readonly clientKey: Uint8Array;
  readonly serverKey: Uint8Array;
  readonly clientIv: Uint8Array;
  readonly serverIv: Uint8Array;
}

/** The key block: 16-byte client and server keys, then 4-byte client and server implicit IVs. */
export function keyBlock(
  master: Uint8Array,
  clientRandom: Uint8Array,
  serverRandom: Uint8Array,
): KeyBlock {
  const b = prf(master, "key expansion", Buffer.concat([serverRandom, clientRandom]), 40);
  return {
    clientKey: b.slice(0, 16),
    serverKey: b.slice(16, 32),
    clientIv: b.slice(32, 36),
    serverIv: b.slice(36, 40),
  };
}

/** The 12-byte verify_data of a Finished message over `handshakeHash` (SHA-256 of the messages). */
export function verifyData(
  master: Uint8Array,
  label: "client finished" | "server finished",
  handshakeHash: Uint8Array,
): Uint8Array {
  return prf(master, label, handshakeHash, 12);
}

/** RFC 5705 keying material with no context (DTLS-SRTP's "EXTRACTOR-dtls_srtp"). */
export function exportKeyingMaterial(
  master: Uint8Array,
  clientRandom: Uint8Array,
  serverRandom: Uint8Array,
  label: string,
  length: number,
): Uint8Array {
  return prf(master, label, Buffer.concat([clientRandom, serverRandom]), length);
}

const EXPLICIT = 8;
const TAG = 16;

/**
 * AES-128-GCM protection of DTLS records in one direction. The nonce is the 4-byte implicit IV
 * and an 8-byte explicit part carried in the record, here the record's epoch and sequence number
 * (unique per key, as RFC 5288 requires). The additional data is epoch, sequence number, content
 * type, version and the plaintext length (RFC 5246 §6.2.3.3 with DTLS's 8-byte sequence).
 */
export class GcmRecordCipher {
  readonly #key: Uint8Array;
  readonly #nonce = new Uint8Array(12);
  readonly #aad = new Uint8Array(13);
  readonly #aadView = new DataView(this.#aad.buffer);

  /** A cipher over `key` (16 bytes) and the implicit IV `implicitIv` (4 bytes). */
  constructor(key: Uint8Array, implicitIv: Uint8Array) {
    if (key.length !== 16 || implicitIv.length !== 4)
      throw new RangeError("AES-128-GCM needs a 16-byte key and a 4-byte implicit IV");
    this.#key = key.slice();
    this.#nonce.set(implicitIv);
  }

  /** The record fragment for `plaintext`: explicit nonce (8), ciphertext, tag (16). */
  seal(
    epoch: number,
    seq: number,
    type: number,
    version: number,
    plaintext: Uint8Array,
  ): Uint8Array {
    const out = new Uint8Array(EXPLICIT + plaintext.length + TAG);
    this.#sequence(out, 0, epoch, seq);
    this.#nonce.set(out.subarray(0, EXPLICIT), 4);
    this.#setAad(epoch, seq, type, version, plaintext.length);
    const c = createCipheriv("aes-128-gcm", this.#key, this.#nonce);
    c.setAAD(this.#aad);
    const body = c.update(plaintext);
    c.final();
    out.set(body, EXPLICIT);
    out.set(c.getAuthTag(), EXPLICIT + body.length);
    return out;
  }

  /**
   * The plaintext of the record fragment `fragment` received with header fields `epoch`, `seq`,
   * `type` and `version`; undefined when it is too short or fails authentication.
   */
  open(
    epoch: number,
    seq: number,
    type: number,
    version: number,
    fragment: Uint8Array,
  ): Uint8Array | undefined {
    const length = fragment.length - EXPLICIT - TAG;
    if (length < 0) return undefined;
    this.#nonce.set(fragment.subarray(0, EXPLICIT), 4);
    this.#setAad(epoch, seq, type, version, length);
    try {
      const d = createDecipheriv("aes-128-gcm", this.#key, this.#nonce);
      d.setAAD(this.#aad);
      d.setAuthTag(fragment.subarray(EXPLICIT + length));
      const body = d.update(fragment.subarray(EXPLICIT, EXPLICIT + length));
      d.final();
      return new Uint8Array(body.buffer, body.byteOffset, body.length);
    } catch {
      return undefined;
    }
  }

  #setAad(epoch: number, seq: number, type: number, version: number, length: number): void {
    this.#sequence(this.#aad, 0, epoch, seq);
    this.#aad[8] = type;
    this.#aadView.setUint16(9, version);
    this.#aadView.setUint16(11, length);
  }

  /** Writes epoch (16 bits) and sequence number (48 bits) big-endian at `at` of `into`. */
  #sequence(into: Uint8Array, at: number, epoch: number, seq: number): void {
    const v = new DataView(into.buffer, into.byteOffset + at, 8);
    v.setUint16(0, epoch);
    v.setUint16(2, Math.floor(seq / 2 ** 32));
    v.setUint32(4, seq >>> 0);
  }
}

/** An ephemeral ECDH key pair on P-256 (secp256r1) for one handshake. */
export class EcdhP256 {
  readonly #ecdh: ECDH;
  /** The public key as a 65-byte uncompressed point (0x04, X, Y). */
  readonly publicKey: Uint8Array;

  constructor() {
    this.#ecdh = createECDH("prime256v1");
    this.publicKey = new Uint8Array(this.#ecdh.generateKeys());
  }

  /** The shared secret (X coordinate, 32 bytes) with `peer`; undefined when it is not a point. */
  computeSecret(peer: Uint8Array): Uint8Array | undefined {
    if (peer.length !== 65 || peer[0] !== 4) return undefined;
    try {
      return new Uint8Array(this.#ecdh.computeSecret(peer));
    } catch {
      return undefined;
    }
  }
}

/** An ECDSA signature with SHA-256 over `data` by `key` (DER, as TLS carries it). */
export function signEcdsaSha256(key: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign("sha256", data, key));
}

/** Whether `signature` (DER) is `key`'s ECDSA-SHA256 signature over `data`; false if malformed. */
export function verifyEcdsaSha256(
  key: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    return verify("sha256", data, key, signature);
  } catch {
    return false;
  }
}
