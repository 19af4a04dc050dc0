/**
 * SRTP and SRTCP (RFC 3711, RFC 7714) for the two DTLS-SRTP profiles SRTP_AEAD_AES_128_GCM
 * (preferred) and SRTP_AES128_CM_HMAC_SHA1_80. One object per direction: an `SrtpProtector`
 * protects what this endpoint sends, an `SrtpUnprotector` verifies and decrypts what it receives.
 * Both keep per-SSRC state created on first use (the unprotector only after a packet
 * authenticates): rollover counter and highest sequence number (RFC 3711 Appendix A), a replay
 * window, and the SRTCP index.
 *
 * Pure and synchronous: no I/O, no clock, no randomness; node:crypto does the ciphers. Wire input
 * never throws: `unprotectRtp` / `unprotectRtcp` return a `Parsed` with a fixed reason and count
 * each refusal in `rejects`. A packet handed to `protect*` is the caller's own, so a malformed one
 * (or an `out` buffer too small) is a programming error and throws a RangeError.
 *
 * Buffers: every method takes an optional `out` to write into and returns a view of it (or `out`
 * itself when it has the exact length); without `out` it returns a new array. `out` either does
 * not overlap the input or starts where the input starts (in place: for protect, a view over the
 * packet and the room after it). Otherwise the input is only read; a refused packet leaves `out`
 * untouched.
 */
import { accept, type Parsed, RejectCounts, type Rejected } from "./reject.ts";
import { CmTransform } from "./srtp-cm.ts";
import { GcmTransform } from "./srtp-gcm.ts";
import { deriveSrtpSessionKeys, type SrtpSessionKeys } from "./srtp-kdf.ts";
import {
  SRTP_AEAD_AES_128_GCM,
  SRTP_PROFILES,
  type SrtpProfile,
  splitSrtpKeyingMaterial,
} from "./srtp-profile.ts";
import { estimateSrtpIndex, REPLAY_FRESH, REPLAY_SEEN, ReplayWindow } from "./srtp-replay.ts";
import { readU32, type SrtpTransform } from "./srtp-transform.ts";

export {
  deriveSrtpSessionKeys,
  SrtpKdfLabel,
  type SrtpSessionKeys,
  srtpKdf,
} from "./srtp-kdf.ts";
export {
  isSrtpProfile,
  SRTP_AEAD_AES_128_GCM,
  SRTP_AES128_CM_HMAC_SHA1_80,
  SRTP_PROFILE_PREFERENCE,
  SRTP_PROFILES,
  type SrtpMasterKeys,
  type SrtpProfile,
  type SrtpProfileInfo,
  splitSrtpKeyingMaterial,
  srtpKeyingMaterialLength,
} from "./srtp-profile.ts";

/** Why an SRTP packet was refused. */
export type SrtpReason =
  /** Shorter than its header (with CSRCs and extension) plus the tag. */
  | "srtp-short"
  /** The RTP version field is not 2. */
  | "srtp-bad-version"
  /** The tag does not verify (tampered, wrong key, or a rollover counter guessed wrong). */
  | "srtp-auth-failed"
  /** This SSRC and index was already accepted. */
  | "srtp-replay"
  /** Below the replay window, or from before the stream's first packet. */
  | "srtp-too-old";

/** Why an SRTCP packet was refused. */
export type SrtcpReason =
  /** Shorter than the 8-byte RTCP header, the E flag + index word and the tag. */
  | "srtcp-short"
  /** The RTCP version field is not 2. */
  | "srtcp-bad-version"
  /** The tag does not verify. */
  | "srtcp-auth-failed"
  /** This SSRC and SRTCP index was already accepted. */
  | "srtcp-replay"
  /** Below the replay window. */
  | "srtcp-too-old";

/** Options of an `SrtpUnprotector`. */
export interface SrtpUnprotectorOptions {
  /**
   * Replay window per SSRC, in packets: a power of two from 64 to 2^20, default 1024 (RFC 3711
   * asks for at least 64; video over a reordering path needs more).
   */
  readonly replayWindow?: number;
}

const DEFAULT_WINDOW = 1024;
const MAX_SRTCP_INDEX = 0x7fffffff;

function transformFor(profile: SrtpProfile, keys: SrtpSessionKeys): SrtpTransform {
  return profile === SRTP_AEAD_AES_128_GCM ? new GcmTransform(keys) : new CmTransform(keys);
}

/**
 * Length of the RTP header (fixed part, CSRCs, extension) of `p`, or -1 when `p` is shorter than
 * that, or -2 when the version is not 2.
 */
function rtpHeaderLength(p: Uint8Array): number {
  const n = p.length;
  if (n < 12) return -1;
  const b0 = p[0] as number;
  if (b0 >>> 6 !== 2) return -2;
  let length = 12 + 4 * (b0 & 0x0f);
  if (b0 & 0x10) {
    if (length + 4 > n) return -1;
    length += 4 + 4 * (((p[length + 2] as number) << 8) | (p[length + 3] as number));
  }
  return length > n ? -1 : length;
}

function outFor(out: Uint8Array | undefined, length: number): Uint8Array {
  if (out === undefined) return new Uint8Array(length);
  if (out.length < length) {
    throw new RangeError(`SRTP output buffer of ${out.length} bytes, ${length} needed`);
  }
  return out;
}

/** `dst` cut to `length` (without making a view when it already fits). */
function fit(dst: Uint8Array, length: number): Uint8Array {
  return dst.length === length ? dst : dst.subarray(0, length);
}

function refusal<R extends string>(reason: R): Rejected<R> {
  return Object.freeze({ ok: false, reason });
}

const SRTP_REFUSED = {
  short: refusal("srtp-short"),
  version: refusal("srtp-bad-version"),
  auth: refusal("srtp-auth-failed"),
  replay: refusal("srtp-replay"),
  old: refusal("srtp-too-old"),
} as const;

const SRTCP_REFUSED = {
  short: refusal("srtcp-short"),
  version: refusal("srtcp-bad-version"),
  auth: refusal("srtcp-auth-failed"),
  replay: refusal("srtcp-replay"),
  old: refusal("srtcp-too-old"),
} as const;

/**
 * Protects outgoing RTP and RTCP for one direction with the session keys of one master key.
 * Per SSRC it tracks the highest packet index sent (its rollover counter advances when the
 * sequence number wraps; a retransmission of an older sequence number gets the index the receiver
 * will estimate) and the next SRTCP index (starting at 0, E flag always set).
 *
 * Protecting two different payloads under the same SSRC and sequence number reuses a keystream:
 * callers retransmit the identical packet or use RTX. After 2^31 SRTCP packets on one SSRC the
 * index wraps: rekey (a new DTLS handshake) long before.
 */
export class SrtpProtector {
  /** The profile this protector implements. */
  readonly profile: SrtpProfile;
  /** Bytes `protectRtp` adds (the tag). */
  readonly rtpOverhead: number;
  /** Bytes `protectRtcp` adds (E flag + index word and tag). */
  readonly rtcpOverhead: number;
  readonly #transform: SrtpTransform;
  /** Highest SRTP index sent, by SSRC (in a box, so that advancing it needs no Map write). */
  readonly #rtp = new Map<number, { highest: number }>();
  /** Next SRTCP index, by SSRC. */
  readonly #rtcp = new Map<number, number>();

  /** A protector with session keys derived by `deriveSrtpSessionKeys` (or given directly). */
  constructor(profile: SrtpProfile, keys: SrtpSessionKeys) {
    this.profile = profile;
    this.#transform = transformFor(profile, keys);
    this.rtpOverhead = SRTP_PROFILES[profile].tagLength;
    this.rtcpOverhead = this.rtpOverhead + 4;
  }

  /**
   * The SRTP packet for RTP `packet`, written into `out` (at least `packet.length + rtpOverhead`
   * bytes) or a new array. Throws a RangeError when `packet` is not an RTP packet (shorter than
   * its header, or version not 2) or `out` is too small.
   */
  protectRtp(packet: Uint8Array, out?: Uint8Array): Uint8Array {
    const headerLength = rtpHeaderLength(packet);
    if (headerLength < 0) throw new RangeError("protectRtp: not an RTP packet");
    const dst = outFor(out, packet.length + this.rtpOverhead);
    const ssrc = readU32(packet, 8);
    const seq = ((packet[2] as number) << 8) | (packet[3] as number);
    const sent = this.#rtp.get(ssrc);
    let index = seq;
    if (sent !== undefined) {
      index = estimateSrtpIndex(sent.highest, seq);
      // From before the first packet sent: the receiver refuses it whatever its index, so it
      // is protected at ROC 0 and must not move the rollover counter.
      if (index < 0) index = seq;
      else if (index > sent.highest) sent.highest = index;
    } else {
      this.#rtp.set(ssrc, { highest: seq });
    }
    return fit(dst, this.#transform.protectRtp(packet, headerLength, ssrc, index, dst));
  }

  /**
   * The SRTCP packet for the RTCP `packet` (a compound packet whose first 8 bytes hold the
   * sender's SSRC), encrypted at the SSRC's next SRTCP index, written into `out` (at least
   * `packet.length + rtcpOverhead` bytes) or a new array. Throws a RangeError when `packet` is
   * shorter than 8 bytes or its version is not 2, or `out` is too small.
   */
  protectRtcp(packet: Uint8Array, out?: Uint8Array): Uint8Array {
    if (packet.length < 8 || (packet[0] as number) >>> 6 !== 2) {
      throw new RangeError("protectRtcp: not an RTCP packet");
    }
    const dst = outFor(out, packet.length + this.rtcpOverhead);
    const ssrc = readU32(packet, 4);
    const index = this.#rtcp.get(ssrc) ?? 0;
    this.#rtcp.set(ssrc, index === MAX_SRTCP_INDEX ? 0 : index + 1);
    return fit(dst, this.#transform.protectRtcp(packet, ssrc, index, dst));
  }

  /** Forgets `ssrc` (a stream that ended): its next packet starts a new rollover count. */
  removeSsrc(ssrc: number): void {
    this.#rtp.delete(ssrc);
    this.#rtcp.delete(ssrc);
  }
}

/**
 * Verifies and decrypts incoming SRTP and SRTCP for one direction. Per SSRC (created only once a
 * packet of it authenticates) it keeps the highest index and a replay window; the first packet of
 * an SSRC is taken to have rollover counter 0 (RFC 3711 §3.3.1). A packet is checked against the
 * replay window before its tag, and the state moves only after the tag verifies, so forged packets
 * change nothing. Every refusal is counted in `rejects`.
 */
export class SrtpUnprotector {
  /** The profile this unprotector implements. */
  readonly profile: SrtpProfile;
  /** Refusals so far, by reason. */
  readonly rejects = new RejectCounts();
  readonly #transform: SrtpTransform;
  readonly #tag: number;
  readonly #window: number;
  readonly #rtp = new Map<number, ReplayWindow>();
  readonly #rtcp = new Map<number, ReplayWindow>();

  /**
   * An unprotector with session keys derived by `deriveSrtpSessionKeys` (or given directly).
   * Throws a RangeError on a replay window that is not a power of two from 64 to 2^20.
   */
  constructor(profile: SrtpProfile, keys: SrtpSessionKeys, options: SrtpUnprotectorOptions = {}) {
    this.profile = profile;
    this.#transform = transformFor(profile, keys);
    this.#tag = SRTP_PROFILES[profile].tagLength;
    this.#window = options.replayWindow ?? DEFAULT_WINDOW;
    new ReplayWindow(this.#window); // a bad size throws here, not at the first packet
  }

  #refuse<R extends string>(r: Rejected<R>): Rejected<R> {
    this.rejects.add(r);
    return r;
  }

  /**
   * The RTP packet inside SRTP `packet`, written into `out` (at least `packet.length` minus the
   * tag, or `packet` itself for in place) or a new array; or why it was refused. Throws only on
   * an `out` that is too small.
   */
  unprotectRtp(packet: Uint8Array, out?: Uint8Array): Parsed<Uint8Array, SrtpReason> {
    const headerLength = rtpHeaderLength(packet);
    if (headerLength === -2) return this.#refuse(SRTP_REFUSED.version);
    if (headerLength < 0 || packet.length < headerLength + this.#tag) {
      return this.#refuse(SRTP_REFUSED.short);
    }
    const ssrc = readU32(packet, 8);
    const seq = ((packet[2] as number) << 8) | (packet[3] as number);
    const window = this.#rtp.get(ssrc);
    let index = seq;
    if (window !== undefined) {
      index = estimateSrtpIndex(window.highest, seq);
      const seen = window.check(index);
      if (seen !== REPLAY_FRESH) {
        return this.#refuse(seen === REPLAY_SEEN ? SRTP_REFUSED.replay : SRTP_REFUSED.old);
      }
    }
    const dst = outFor(out, packet.length - this.#tag);
    const length = this.#transform.unprotectRtp(packet, headerLength, ssrc, index, dst);
    if (length < 0) return this.#refuse(SRTP_REFUSED.auth);
    if (window === undefined) this.#rtp.set(ssrc, this.#accepted(index));
    else window.accept(index);
    return accept(fit(dst, length));
  }

  /**
   * The RTCP packet inside SRTCP `packet`, written into `out` (at least `packet.length` minus the
   * index word and tag, or `packet` itself) or a new array; or why it was refused. Unencrypted
   * SRTCP (E flag clear) is accepted when its tag verifies. Throws only on an `out` too small.
   */
  unprotectRtcp(packet: Uint8Array, out?: Uint8Array): Parsed<Uint8Array, SrtcpReason> {
    const n = packet.length;
    if (n < 1) return this.#refuse(SRTCP_REFUSED.short);
    if ((packet[0] as number) >>> 6 !== 2) return this.#refuse(SRTCP_REFUSED.version);
    if (n < 8 + 4 + this.#tag) return this.#refuse(SRTCP_REFUSED.short);
    const ssrc = readU32(packet, 4);
    const word = readU32(packet, n - this.#transform.rtcpIndexFromEnd);
    const index = word & MAX_SRTCP_INDEX;
    const window = this.#rtcp.get(ssrc);
    if (window !== undefined) {
      const seen = window.check(index);
      if (seen !== REPLAY_FRESH) {
        return this.#refuse(seen === REPLAY_SEEN ? SRTCP_REFUSED.replay : SRTCP_REFUSED.old);
      }
    }
    const dst = outFor(out, n - 4 - this.#tag);
    const length = this.#transform.unprotectRtcp(packet, ssrc, word, dst);
    if (length < 0) return this.#refuse(SRTCP_REFUSED.auth);
    if (window === undefined) this.#rtcp.set(ssrc, this.#accepted(index));
    else window.accept(index);
    return accept(fit(dst, length));
  }

  #accepted(index: number): ReplayWindow {
    const window = new ReplayWindow(this.#window);
    window.accept(index);
    return window;
  }

  /** Forgets `ssrc` (a stream that ended): its next packet starts afresh at rollover counter 0. */
  removeSsrc(ssrc: number): void {
    this.#rtp.delete(ssrc);
    this.#rtcp.delete(ssrc);
  }
}

/** The two directions of one DTLS-SRTP association. */
export interface SrtpPair {
  /** Protects what this endpoint sends (its local master key). */
  readonly protector: SrtpProtector;
  /** Unprotects what the peer sends (the remote master key). */
  readonly unprotector: SrtpUnprotector;
}

/**
 * The protector (local keys) and unprotector (remote keys) for DTLS-SRTP keying `material`
 * exported after a handshake in which this endpoint had DTLS `role` (RFC 5764 §4.2). Throws a
 * RangeError when `material` has the wrong length for `profile`.
 */
export function createSrtpPair(
  profile: SrtpProfile,
  material: Uint8Array,
  role: "client" | "server",
  options: SrtpUnprotectorOptions = {},
): SrtpPair {
  const keys = splitSrtpKeyingMaterial(profile, material, role);
  return {
    protector: new SrtpProtector(
      profile,
      deriveSrtpSessionKeys(profile, keys.localKey, keys.localSalt),
    ),
    unprotector: new SrtpUnprotector(
      profile,
      deriveSrtpSessionKeys(profile, keys.remoteKey, keys.remoteSalt),
      options,
    ),
  };
}
