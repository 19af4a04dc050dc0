/**
 * SRTP_AES128_CM_HMAC_SHA1_80 packet transform (RFC 3711): AES-128 in counter mode with the IV
 * of §4.1.1, (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16), and HMAC-SHA1 truncated to
 * 80 bits over the authenticated portion — for SRTP the header and ciphertext followed by the
 * ROC (§4.2), for SRTCP everything up to and including the E flag + index word (§3.4). One cipher
 * and one HMAC per packet from synchronous node:crypto.
 */
import { createCipheriv, createHmac, createSecretKey, type KeyObject } from "node:crypto";
import type { SrtpSessionKeys } from "./srtp-kdf.ts";
import {
  copyFront,
  FrontCopies,
  type SrtpTransform,
  saltWords,
  writeU32,
} from "./srtp-transform.ts";

const TAG = 10;

/** True when the first TAG bytes of `mac` equal `p[at, at + TAG)`, in constant time. */
function tagMatches(mac: Uint8Array, p: Uint8Array, at: number): boolean {
  let diff = 0;
  for (let i = 0; i < TAG; i++) diff |= (mac[i] as number) ^ (p[at + i] as number);
  return diff === 0;
}

/** The AES-CM + HMAC-SHA1-80 transform for one direction's session keys. */
export class CmTransform implements SrtpTransform {
  readonly tagLength = TAG;
  readonly rtcpIndexFromEnd = TAG + 4;
  readonly #rtpKey: KeyObject;
  readonly #rtcpKey: KeyObject;
  readonly #rtpAuth: KeyObject;
  readonly #rtcpAuth: KeyObject;
  readonly #rtpSalt: Uint32Array;
  readonly #rtcpSalt: Uint32Array;
  readonly #iv = new Uint8Array(16);
  readonly #ivView = new DataView(this.#iv.buffer);
  /** The ROC or SRTCP index word that ends the authenticated portion. */
  readonly #trailer = new Uint8Array(4);
  readonly #front = new FrontCopies();

  /** A transform keyed with `keys` (16-byte keys, 14-byte salts, 20-byte auth keys). */
  constructor(keys: SrtpSessionKeys) {
    this.#rtpKey = createSecretKey(keys.rtpKey);
    this.#rtcpKey = createSecretKey(keys.rtcpKey);
    this.#rtpAuth = createSecretKey(keys.rtpAuthKey);
    this.#rtcpAuth = createSecretKey(keys.rtcpAuthKey);
    this.#rtpSalt = saltWords(keys.rtpSalt);
    this.#rtcpSalt = saltWords(keys.rtcpSalt);
  }

  /** The counter block for `ssrc` and the 48-bit index `hi` * 2^32 + `lo`. */
  #ivFor(salt: Uint32Array, ssrc: number, hi: number, lo: number): Uint8Array {
    const v = this.#ivView;
    v.setUint32(0, salt[0] as number);
    v.setUint32(4, (salt[1] as number) ^ ssrc);
    v.setUint32(8, (salt[2] as number) ^ ((hi << 16) | (lo >>> 16)));
    v.setUint32(12, (salt[3] as number) ^ (lo << 16));
    return this.#iv;
  }

  #rtpIv(ssrc: number, index: number): Uint8Array {
    const roc = Math.floor(index / 65536);
    return this.#ivFor(
      this.#rtpSalt,
      ssrc,
      roc >>> 16,
      ((roc << 16) | (index - roc * 65536)) >>> 0,
    );
  }

  /** HMAC-SHA1 over `header`, `body` and `trailer` (the ROC, or an SRTCP index word). */
  #mac(key: KeyObject, header: Uint8Array, body: Uint8Array, trailer: Uint8Array): Buffer {
    return createHmac("sha1", key).update(header).update(body).update(trailer).digest();
  }

  /** See SrtpTransform.protectRtp. */
  protectRtp(
    packet: Uint8Array,
    headerLength: number,
    ssrc: number,
    index: number,
    out: Uint8Array,
  ): number {
    const n = packet.length;
    const cipher = createCipheriv("aes-128-ctr", this.#rtpKey, this.#rtpIv(ssrc, index));
    const body = cipher.update(packet.subarray(headerLength));
    writeU32(this.#trailer, 0, Math.floor(index / 65536));
    const mac = this.#mac(this.#rtpAuth, this.#front.of(packet, headerLength), body, this.#trailer);
    copyFront(packet, headerLength, out);
    out.set(body, headerLength);
    for (let i = 0; i < TAG; i++) out[n + i] = mac[i] as number;
    return n + TAG;
  }

  /** See SrtpTransform.unprotectRtp. */
  unprotectRtp(
    packet: Uint8Array,
    headerLength: number,
    ssrc: number,
    index: number,
    out: Uint8Array,
  ): number {
    const end = packet.length - TAG;
    const encrypted = packet.subarray(headerLength, end);
    writeU32(this.#trailer, 0, Math.floor(index / 65536));
    const header = this.#front.of(packet, headerLength);
    if (!tagMatches(this.#mac(this.#rtpAuth, header, encrypted, this.#trailer), packet, end)) {
      return -1;
    }
    const cipher = createCipheriv("aes-128-ctr", this.#rtpKey, this.#rtpIv(ssrc, index));
    const body = cipher.update(encrypted);
    copyFront(packet, headerLength, out);
    out.set(body, headerLength);
    return end;
  }

  /** See SrtpTransform.protectRtcp. */
  protectRtcp(packet: Uint8Array, ssrc: number, index: number, out: Uint8Array): number {
    const n = packet.length;
    const iv = this.#ivFor(this.#rtcpSalt, ssrc, 0, index);
    const body = createCipheriv("aes-128-ctr", this.#rtcpKey, iv).update(packet.subarray(8));
    writeU32(this.#trailer, 0, (0x80000000 | index) >>> 0);
    const mac = this.#mac(this.#rtcpAuth, this.#front.of(packet, 8), body, this.#trailer);
    copyFront(packet, 8, out);
    out.set(body, 8);
    out.set(this.#trailer, n);
    for (let i = 0; i < TAG; i++) out[n + 4 + i] = mac[i] as number;
    return n + 4 + TAG;
  }

  /** See SrtpTransform.unprotectRtcp. */
  unprotectRtcp(packet: Uint8Array, ssrc: number, word: number, out: Uint8Array): number {
    const end = packet.length - TAG - 4;
    const rest = packet.subarray(8, end);
    writeU32(this.#trailer, 0, word);
    const mac = this.#mac(this.#rtcpAuth, this.#front.of(packet, 8), rest, this.#trailer);
    if (!tagMatches(mac, packet, end + 4)) return -1;
    if (word >>> 31 === 0) {
      copyFront(packet, end, out);
      return end;
    }
    const iv = this.#ivFor(this.#rtcpSalt, ssrc, 0, word & 0x7fffffff);
    const body = createCipheriv("aes-128-ctr", this.#rtcpKey, iv).update(rest);
    copyFront(packet, 8, out);
    out.set(body, 8);
    return end;
  }
}
