/**
 * Fuzz target: the RTCP compound parser, every packet's fields and views read, and every accepted
 * compound written back (fed from compounds of every kind the builder writes and TWCC).
 */
import {
  parseRtcp,
  type RtcpPacket,
  rtcpLength,
  writeRtcpCompound,
} from "../../../src/webrtc/rtcp.ts";
import type { FuzzTarget } from "../fuzz.ts";

function compound(...ps: RtcpPacket[]): Uint8Array {
  const out = new Uint8Array(ps.reduce((n, p) => n + rtcpLength(p), 0));
  writeRtcpCompound(ps, out);
  return out;
}

const report = {
  ssrc: 2,
  fractionLost: 1,
  packetsLost: -3,
  highestSequence: 4,
  jitter: 5,
  lastSr: 6,
  delaySinceLastSr: 7,
};
const cname = new TextEncoder().encode("cname");

const samples = [
  compound(
    { type: "rr", ssrc: 1, reports: [report] },
    { type: "nack", sender: 1, media: 2, lost: [10, 11, 40, 65535, 0] },
    { type: "pli", sender: 1, media: 2 },
    { type: "fir", sender: 1, entries: [{ ssrc: 2, sequence: 9 }] },
    { type: "remb", sender: 1, bitrate: 1_000_000, ssrcs: [2, 3] },
  ),
  compound(
    {
      type: "sr",
      ssrc: 1,
      ntpSeconds: 3,
      ntpFraction: 4,
      rtpTimestamp: 5,
      packetCount: 6,
      octetCount: 7,
      reports: [report, report],
    },
    { type: "sdes", chunks: [{ ssrc: 1, items: [{ kind: 1, value: cname }] }] },
    { type: "bye", ssrcs: [1], reason: cname },
  ),
  new Uint8Array(Buffer.from("8fcd0004000000010000000200010002a0000000", "hex")), // TWCC
];

/** The RTCP targets. */
export const targets: readonly FuzzTarget[] = [
  {
    name: "rtcp-parse",
    samples,
    feed(input) {
      const r = parseRtcp(input);
      if (!r.ok) return r.reason;
      // every field and view read, then the whole compound written back
      const seen = JSON.stringify(r.value, (_k, v) => (v instanceof Uint8Array ? [...v] : v));
      const out = new Uint8Array(r.value.reduce((n, p) => n + rtcpLength(p), 0));
      writeRtcpCompound(r.value, out);
      return seen.length > 0 ? undefined : "impossible";
    },
  },
];
