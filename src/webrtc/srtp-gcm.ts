/**
 * SRTP_AEAD_AES_128_GCM packet transform (RFC 7714): AES-128-GCM with a 16-byte tag, one cipher
 * per packet from synchronous node:crypto. SRTP (§8): nonce = (00 00 || SSRC || ROC || SEQ) XOR
 * salt, AAD = the RTP header with its CSRCs and extension. SRTCP (§9): nonce = (00 00 || SSRC ||
 * 00 00 || 0 || index) XOR salt, AAD = the first 8 bytes || E + index (or, unencrypted, the
 * whole packet || E + index); the packet is header || ciphertext || tag || E + index.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from "node:crypto";
import type { SrtpSessionKeys } from "./srtp-kdf.ts";
import {
  copyFront,
  FrontCopies,
  type SrtpTransform,
  saltWords,
  writeU32,
} from "./srtp-transform.ts";

const TAG = 16;

/** The AES-128-GCM transform for one direction's session keys. */
export class GcmTransform implements SrtpTransform {
  readonly tagLength = TAG;
  readonly rtcpIndexFromEnd = 4;
  readonly #rtpKey: KeyObject;
  readonly #rtcpKey: KeyObject;
  readonly #rtpSalt: Uint32Array;
  readonly #rtcpSalt: Uint32Array;
  readonly #nonce = new Uint8Array(12);
  readonly #nonceView = new DataView(this.#nonce.buffer);
  readonly #word = new Uint8Array(4);
  readonly #tag = new Uint8Array(TAG);
  readonly #front = new FrontCopies();

  /** A transform keyed with `keys` (16-byte keys, 12-byte salts). */
  constructor(keys: SrtpSessionKeys) {
    this.#rtpKey = createSecretKey(keys.rtpKey);
    this.#rtcpKey = createSecretKey(keys.rtcpKey);
    this.#rtpSalt = saltWords(keys.rtpSalt);
    this.#rtcpSalt = saltWords(keys.rtcpSalt);
  }

  #rtpNonce(ssrc: number, index: number): Uint8Array {
    const roc = Math.floor(index / 65536);
    const seq = index - roc * 65536;
    const s = this.#rtpSalt;
    const v = this.#nonceView;
    v.setUint32(0, (s[0] as number) ^ (ssrc >>> 16));
    v.setUint32(4, (s[1] as number) ^ ((ssrc << 16) | (roc >>> 16)));
    v.setUint32(8, (s[2] as number) ^ ((roc << 16) | seq));
    return this.#nonce;
  }

  #rtcpNonce(ssrc: number, index: number): Uint8Array {
    const s = this.#rtcpSalt;
    const v = this.#nonceView;
    v.setUint32(0, (s[0] as number) ^ (ssrc >>> 16));
    v.setUint32(4, (s[1] as number) ^ (ssrc << 16));
    v.setUint32(8, (s[2] as number) ^ index);
    return this.#nonce;
  }

  /** See SrtpTransform.protectRtp. */
  protectRtp(
    packet: Uint8Array,
    headerLength: number,
    ssrc: number,
    index: number,
    out: Uint8Array,
  ): number {
    const cipher = createCipheriv("aes-128-gcm", this.#rtpKey, this.#rtpNonce(ssrc, index));
    cipher.setAAD(this.#front.of(packet, headerLength));
    const body = cipher.update(packet.subarray(headerLength));
    cipher.final();
    copyFront(packet, headerLength, out);
    out.set(body, headerLength);
    out.set(cipher.getAuthTag(), packet.length);
    return packet.length + TAG;
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
    const decipher = createDecipheriv("aes-128-gcm", this.#rtpKey, this.#rtpNonce(ssrc, index));
    decipher.setAAD(this.#front.of(packet, headerLength));
    decipher.setAuthTag(this.#tagOf(packet, end));
    const body = decipher.update(packet.subarray(headerLength, end));
    try {
      decipher.final();
    } catch {
      return -1;
    }
    copyFront(packet, headerLength, out);
    out.set(body, headerLength);
    return end;
  }

  /** See SrtpTransform.protectRtcp. */
  protectRtcp(packet: Uint8Array, ssrc: number, index: number, out: Uint8Array): number {
    const n = packet.length;
    writeU32(this.#word, 0, (0x80000000 | index) >>> 0);
    const cipher = createCipheriv("aes-128-gcm", this.#rtcpKey, this.#rtcpNonce(ssrc, index));
    cipher.setAAD(this.#front.of(packet, 8));
    cipher.setAAD(this.#word);
    const body = cipher.update(packet.subarray(8));
    cipher.final();
    copyFront(packet, 8, out);
    out.set(body, 8);
    out.set(cipher.getAuthTag(), n);
    out.set(this.#word, n + TAG);
    return n + TAG + 4;
  }

  /** See SrtpTransform.unprotectRtcp. */
  unprotectRtcp(packet: Uint8Array, ssrc: number, word: number, out: Uint8Array): number {
    const n = packet.length;
    const end = n - TAG - 4;
    const encrypted = word >>> 31 === 1;
    writeU32(this.#word, 0, word);
    const decipher = createDecipheriv(
      "aes-128-gcm",
      this.#rtcpKey,
      this.#rtcpNonce(ssrc, word & 0x7fffffff),
    );
    decipher.setAAD(encrypted ? this.#front.of(packet, 8) : packet.subarray(0, end));
    decipher.setAAD(this.#word);
    decipher.setAuthTag(this.#tagOf(packet, end));
    const body = encrypted ? decipher.update(packet.subarray(8, end)) : undefined;
    try {
      decipher.final();
    } catch {
      return -1;
    }
    if (body === undefined) {
      copyFront(packet, end, out);
    } else {
      copyFront(packet, 8, out);
      out.set(body, 8);
    }
    return end;
  }

  /** The 16 tag bytes at `at`, copied into a reused array. */
  #tagOf(packet: Uint8Array, at: number): Uint8Array {
    const tag = this.#tag;
    for (let i = 0; i < TAG; i++) tag[i] = packet[at + i] as number;
    return tag;
  }
}
