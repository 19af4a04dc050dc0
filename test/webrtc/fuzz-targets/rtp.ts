/**
 * Fuzz target: the RTP parser, every getter and the extension iteration on what it accepts
 * (fed from packets with CSRCs, both extension forms and padding).
 */
import { parseRtp, type RtpInit, rtpLength, writeRtp } from "../../../src/webrtc/rtp.ts";
import type { FuzzTarget } from "../fuzz.ts";

function sample(init: RtpInit): Uint8Array {
  const out = new Uint8Array(rtpLength(init));
  writeRtp(init, out);
  return out;
}

const samples = [
  sample({
    payloadType: 96,
    sequenceNumber: 1,
    timestamp: 90000,
    ssrc: 1,
    payload: new Uint8Array(100),
  }),
  sample({
    payloadType: 111,
    sequenceNumber: 65535,
    timestamp: 1,
    ssrc: 2,
    marker: true,
    csrcs: [7, 8],
    extensions: [
      { id: 1, value: Uint8Array.of(0x30) },
      { id: 3, value: Uint8Array.of(1, 2, 3) },
    ],
    payload: new Uint8Array(40),
    paddingLength: 4,
  }),
  sample({
    payloadType: 102,
    sequenceNumber: 5,
    timestamp: 5,
    ssrc: 3,
    extensions: [
      { id: 20, value: new Uint8Array(30) },
      { id: 2, value: new Uint8Array(0) },
    ],
    payload: new Uint8Array(10),
  }),
];

/** The RTP targets. */
export const targets: readonly FuzzTarget[] = [
  {
    name: "rtp-parse",
    samples,
    feed(input) {
      const r = parseRtp(input);
      if (!r.ok) return r.reason;
      const v = r.value;
      let sum = v.payload.length + v.ssrc + v.sequenceNumber + v.timestamp + v.payloadType;
      sum += v.version + v.paddingLength + v.headerLength + (v.extensionProfile ?? 0);
      for (const c of v.csrcs()) sum += c;
      for (const e of v.extensions())
        sum += e.id + e.value.length + (v.extension(e.id)?.length ?? 0);
      return Number.isFinite(sum) ? undefined : "impossible";
    },
  },
];
