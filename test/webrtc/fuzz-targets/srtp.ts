/**
 * Fuzz targets: `SrtpUnprotector.unprotectRtp` and `unprotectRtcp` for both profiles, fed from
 * packets protected with the same fixed keys (plain, with CSRCs, with a header extension, with an
 * empty payload; RTCP sender reports). Inputs alternate between an unprotector that lives across
 * the run (replay windows, rollover guesses) and a new one (so mutations reach the tag check).
 */
import {
  createSrtpPair,
  deriveSrtpSessionKeys,
  SRTP_AEAD_AES_128_GCM,
  SRTP_AES128_CM_HMAC_SHA1_80,
  type SrtpProfile,
  SrtpUnprotector,
  splitSrtpKeyingMaterial,
  srtpKeyingMaterialLength,
} from "../../../src/webrtc/srtp.ts";
import type { FuzzTarget } from "../fuzz.ts";

/** An RTP packet: `csrcs` CSRCs, an extension of `extWords` words when given, `payload` bytes. */
function rtp(
  seq: number,
  csrcs: number,
  extWords: number | undefined,
  payload: number,
): Uint8Array {
  const ext = extWords === undefined ? 0 : 4 + 4 * extWords;
  const p = new Uint8Array(12 + 4 * csrcs + ext + payload);
  p[0] = 0x80 | (extWords === undefined ? 0 : 0x10) | csrcs;
  p[1] = 96;
  p[2] = seq >>> 8;
  p[3] = seq;
  p.set([0, 1, 2, 3, 0x12, 0x34, 0x56, 0x78], 4);
  for (let i = 12; i < p.length; i++) p[i] = i * 7;
  if (extWords !== undefined) {
    const at = 12 + 4 * csrcs;
    p.set([0xbe, 0xde, extWords >>> 8, extWords], at);
  }
  return p;
}

/** An RTCP sender report with one report block, from SSRC 0x12345678. */
function rtcp(fill: number): Uint8Array {
  const p = new Uint8Array(52).fill(fill);
  p.set([0x81, 200, 0, 12, 0x12, 0x34, 0x56, 0x78]);
  return p;
}

function targetsFor(profile: SrtpProfile, label: string): FuzzTarget[] {
  const material = new Uint8Array(srtpKeyingMaterialLength(profile)).map((_, i) => i * 31 + 5);
  const sender = createSrtpPair(profile, material, "client").protector;
  const keys = splitSrtpKeyingMaterial(profile, material, "server");
  const remote = deriveSrtpSessionKeys(profile, keys.remoteKey, keys.remoteSalt);
  const rtpSamples = [
    rtp(65534, 0, undefined, 160),
    rtp(65535, 2, undefined, 1100),
    rtp(0, 0, 2, 40),
    rtp(1, 15, 1, 0),
    rtp(2, 0, 0, 1),
  ].map((p) => sender.protectRtp(p));
  const rtcpSamples = [rtcp(1), rtcp(2), rtcp(3).subarray(0, 8)].map((p) => sender.protectRtcp(p));
  // Every other input goes to a receiver that has seen nothing, so that mutated samples reach the
  // tag check instead of stopping at the replay window of the long-lived one.
  const alternating = (): (() => SrtpUnprotector) => {
    const lived = new SrtpUnprotector(profile, remote);
    let n = 0;
    return () => (++n % 2 === 0 ? new SrtpUnprotector(profile, remote) : lived);
  };
  const rtpReceiver = alternating();
  const rtcpReceiver = alternating();
  return [
    {
      name: `srtp-unprotect-rtp-${label}`,
      samples: rtpSamples,
      feed(input) {
        const r = rtpReceiver().unprotectRtp(input);
        return r.ok ? undefined : r.reason;
      },
    },
    {
      name: `srtp-unprotect-rtcp-${label}`,
      samples: rtcpSamples,
      feed(input) {
        const r = rtcpReceiver().unprotectRtcp(input);
        return r.ok ? undefined : r.reason;
      },
    },
  ];
}

/** Both operations for both profiles. */
export const targets: FuzzTarget[] = [
  ...targetsFor(SRTP_AEAD_AES_128_GCM, "gcm"),
  ...targetsFor(SRTP_AES128_CM_HMAC_SHA1_80, "cm"),
];
