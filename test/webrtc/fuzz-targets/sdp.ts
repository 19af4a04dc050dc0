/**
 * Fuzz target: the SDP offer parser (bytes decoded as UTF-8) and the answer built from what it
 * accepts, fed from the fixtures: a real Chromium offer, an OBS-style WHIP offer, a real aiortc one.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildAnswer, parseOffer } from "../../../src/webrtc/sdp.ts";
import type { FuzzTarget } from "../fuzz.ts";

const fixture = (name: string) =>
  new Uint8Array(readFileSync(join(import.meta.dir, "..", "fixtures", `${name}-offer.sdp`)));
const decoder = new TextDecoder();

/** The SDP targets. */
export const targets: readonly FuzzTarget[] = [
  {
    name: "sdp-offer",
    samples: [fixture("chromium"), fixture("obs"), fixture("aiortc")],
    feed(input) {
      const r = parseOffer(decoder.decode(input));
      if (!r.ok) return r.reason;
      const answer = buildAnswer(r.value, {
        iceUfrag: "srvu",
        icePwd: "serverpasswordserverpw1",
        fingerprint: "00".repeat(32).replace(/(..)(?!$)/g, "$1:"),
        candidate: { ip: "127.0.0.1", port: 40000 },
        sending: { 1: { streamId: "s", trackId: "t", ssrc: 1, cname: "c", rtxSsrc: 2 } },
      });
      return answer.startsWith("v=0\r\n") ? undefined : "impossible";
    },
  },
];
