/**
 * SDP offer/answer on three offers (test/webrtc/fixtures): a real Chromium 156 offer (audio +
 * video, send-only, captured headless: BUNDLE, Opus 111, VP8 96 / rtx 97, H.264 102/104/108...,
 * extmaps, trickle, no candidates), an OBS-style WHIP offer (libdatachannel's layout: ICE
 * credentials, fingerprint and setup at session level, H.264 only, candidates), and a real aiortc
 * 1.4 offer (Debian's python3-aiortc: actpass, per-m-line credentials and candidates, a data
 * channel). The answers are checked line by line; payload types follow the offer whatever numbers
 * it uses (a property over renumbered offers); rejected m-lines get port 0; every answer re-parses
 * with sdp-transform and with `parseOffer`; refusals have reasons; and a seeded fuzz.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import sdpTransform from "sdp-transform";
import {
  type AnswerOptions,
  buildAnswer,
  parseOffer,
  type SdpOffer,
} from "../../src/webrtc/sdp.ts";
import { checkFuzz } from "./fuzz.ts";
import { targets } from "./fuzz-targets/sdp.ts";

const fixture = (name: string) =>
  readFileSync(join(import.meta.dir, "fixtures", `${name}-offer.sdp`), "utf8");
const chromium = fixture("chromium");
const obs = fixture("obs");
const aiortc = fixture("aiortc");

const FP =
  "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99";
const options: AnswerOptions = {
  iceUfrag: "srvu",
  icePwd: "serverpasswordserverpw1",
  fingerprint: FP,
  candidate: { ip: "192.0.2.1", port: 40000 },
};

function offer(text: string): SdpOffer {
  const r = parseOffer(text);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

/** The answer's lines before the first m=, and each m-section's lines. */
function sections(answer: string): string[][] {
  expect(answer.endsWith("\r\n")).toBe(true);
  const out: string[][] = [[]];
  for (const line of answer.slice(0, -2).split("\r\n")) {
    if (line.startsWith("m=")) out.push([]);
    out[out.length - 1]?.push(line);
  }
  return out;
}

/** The transport lines every m-line taken carries (credentials at media level). */
const TRANSPORT = [
  "a=setup:passive",
  "a=ice-ufrag:srvu",
  "a=ice-pwd:serverpasswordserverpw1",
  `a=fingerprint:sha-256 ${FP}`,
  "a=candidate:1 1 udp 2130706431 192.0.2.1 40000 typ host",
  "a=end-of-candidates",
  "a=rtcp-mux",
];
const SESSION = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=ice-lite"];
const fb = (pt: number, ...values: string[]) => values.map((v) => `a=rtcp-fb:${pt} ${v}`);
const CHROMIUM_FB = ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"];

describe("SDP: reading offers", () => {
  test("Chromium: the BUNDLE transport (media-level credentials), actpass, codecs by name with the offer's numbers, extensions, msid, SSRCs and RTX, no candidates", () => {
    const o = offer(chromium);
    expect([o.iceUfrag, o.icePwd, o.setup, o.bundle, o.candidates]).toEqual([
      "opu+",
      "906k2NMULznUqXnAxXKFF1hE",
      "actpass",
      ["0", "1"],
      [],
    ]);
    expect(o.fingerprint).toBe(
      "4E:CB:E0:07:F9:DB:C3:C6:9A:E5:4A:72:1F:A4:E0:A3:99:A0:7B:28:D6:F8:79:43:7C:42:97:83:35:A8:A1:4E",
    );
    expect(o.media.map((m) => [m.mid, m.kind, m.port, m.protocol, m.direction, m.rtcpMux])).toEqual(
      [
        ["0", "audio", 9, "UDP/TLS/RTP/SAVPF", "sendonly", true],
        ["1", "video", 9, "UDP/TLS/RTP/SAVPF", "sendonly", true],
      ],
    );
    const [audio, video] = o.media;
    expect(audio?.codecs[0]).toEqual({
      payloadType: 111,
      name: "opus",
      clockRate: 48000,
      channels: 2,
      fmtp: "minptime=10;useinbandfec=1",
      rtcpFb: ["transport-cc"],
    });
    const pt = (name: string, fmtp?: RegExp) =>
      video?.codecs
        .filter((c) => c.name === name && (fmtp === undefined || fmtp.test(c.fmtp ?? "")))
        .map((c) => c.payloadType);
    expect(pt("VP8")).toEqual([96]);
    expect(pt("rtx", /^apt=96$/)).toEqual([97]);
    expect(pt("H264", /profile-level-id=42001f/)).toEqual([102, 104]);
    expect(pt("H264", /packetization-mode=1;profile-level-id=42e01f/)).toEqual([108]);
    expect(video?.codecs.find((c) => c.payloadType === 96)?.rtcpFb).toEqual(CHROMIUM_FB);
    expect(audio?.extensions).toEqual([
      { id: 1, uri: "urn:ietf:params:rtp-hdrext:ssrc-audio-level" },
      { id: 2, uri: "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time" },
      { id: 3, uri: "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01" },
      { id: 4, uri: "urn:ietf:params:rtp-hdrext:sdes:mid" },
    ]);
    expect(video?.extensions.length).toBe(11);
    expect([audio?.msid, audio?.cname, audio?.ssrcs]).toEqual([
      "- 17570575-8b9c-4694-bc00-ecf13e3b5810",
      "5vW0GpQQN0iTD0xA",
      [2735468331],
    ]);
    expect([video?.ssrcs, [...(video?.rtx ?? [])]]).toEqual([
      [1880875405, 3785269556],
      [[1880875405, 3785269556]],
    ]);
  });

  test("OBS: credentials, fingerprint and setup at session level; candidates of the tagged m-line", () => {
    const o = offer(obs);
    expect([o.iceUfrag, o.icePwd, o.setup, o.bundle]).toEqual([
      "pYQx",
      "WZ5f0DXM1ZPX9ITn2zUY3s",
      "actpass",
      ["0", "1"],
    ]);
    expect(o.fingerprint.startsWith("1D:9B:1E")).toBe(true);
    expect(o.candidates).toEqual([
      { ip: "192.168.1.20", port: 56301, transport: "udp", type: "host", priority: 2122317823 },
      { ip: "203.0.113.20", port: 56301, transport: "udp", type: "srflx", priority: 1686052607 },
    ]);
    expect(o.media[1]?.codecs.map((c) => [c.payloadType, c.name, c.fmtp])).toEqual([
      [96, "H264", "profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1"],
    ]);
    expect(o.media.map((m) => m.msid)).toEqual(["obs-stream obs-audio", "obs-stream obs-video"]);
  });

  test("aiortc: per-m-line credentials (the BUNDLE tag's taken), actpass, its candidates (IPv6 too), a data channel m-line", () => {
    const o = offer(aiortc);
    expect([o.iceUfrag, o.icePwd, o.setup, o.bundle]).toEqual([
      "XH7Y",
      "WUo1c8hvWU3l0jXbPaBSBl",
      "actpass",
      ["0", "1", "2"],
    ]);
    expect(o.candidates.map((c) => `${c.ip} ${c.port} ${c.transport} ${c.type}`)).toEqual([
      "192.0.2.2 58432 udp host",
      "fd00::2 39245 udp host",
      "10.231.77.1 47197 udp host",
      "10.231.77.1 56220 udp host",
    ]);
    expect(o.media.map((m) => [m.mid, m.kind, m.protocol, m.formats, m.direction])).toEqual([
      ["0", "audio", "UDP/TLS/RTP/SAVPF", "96 0 8", "sendrecv"],
      ["1", "video", "UDP/TLS/RTP/SAVPF", "97 98 99 100 101 102", "sendrecv"],
      ["2", "application", "DTLS/SCTP", "5000", "sendrecv"],
    ]);
    expect([...(o.media[1]?.rtx ?? [])]).toEqual([[849115106, 1282174755]]);
  });
});

describe("SDP: answers", () => {
  test("to Chromium: every line; recvonly; Opus; VP8 then H.264 42e01f then 42001f (mode 1 only), each with its rtx, the offer's numbers; feedback and extensions restricted", () => {
    const [session, audio, video] = sections(buildAnswer(offer(chromium), options));
    expect(session).toEqual([...SESSION, "a=msid-semantic: WMS *", "a=group:BUNDLE 0 1"]);
    expect(audio).toEqual([
      "m=audio 40000 UDP/TLS/RTP/SAVPF 111",
      "c=IN IP4 192.0.2.1",
      "a=rtpmap:111 opus/48000/2",
      "a=fmtp:111 minptime=10;useinbandfec=1",
      "a=rtcp-fb:111 transport-cc",
      "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
      "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
      "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
      "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
      "a=setup:passive",
      "a=mid:0",
      "a=recvonly",
      ...TRANSPORT.slice(1),
    ]);
    expect(video).toEqual([
      "m=video 40000 UDP/TLS/RTP/SAVPF 96 97 108 109 102 103",
      "c=IN IP4 192.0.2.1",
      "a=rtpmap:96 VP8/90000",
      "a=rtpmap:97 rtx/90000",
      "a=rtpmap:108 H264/90000",
      "a=rtpmap:109 rtx/90000",
      "a=rtpmap:102 H264/90000",
      "a=rtpmap:103 rtx/90000",
      "a=fmtp:97 apt=96",
      "a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
      "a=fmtp:109 apt=108",
      "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
      "a=fmtp:103 apt=102",
      ...fb(96, ...CHROMIUM_FB),
      ...fb(108, ...CHROMIUM_FB),
      ...fb(102, ...CHROMIUM_FB),
      "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
      "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
      "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
      "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
      "a=setup:passive",
      "a=mid:1",
      "a=recvonly",
      ...TRANSPORT.slice(1),
    ]);
  });

  test("to OBS: every line, credentials and fingerprint at session level when asked", () => {
    const answer = buildAnswer(offer(obs), { ...options, credentialsAt: "session" });
    expect(sections(answer)).toEqual([
      [
        ...SESSION,
        "a=ice-ufrag:srvu",
        "a=ice-pwd:serverpasswordserverpw1",
        `a=fingerprint:sha-256 ${FP}`,
        "a=msid-semantic: WMS *",
        "a=group:BUNDLE 0 1",
      ],
      [
        "m=audio 40000 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 192.0.2.1",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;maxaveragebitrate=96000;stereo=1;sprop-stereo=1;useinbandfec=1",
        "a=setup:passive",
        "a=mid:0",
        "a=recvonly",
        ...TRANSPORT.slice(4),
      ],
      [
        "m=video 40000 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 192.0.2.1",
        "a=rtpmap:96 H264/90000",
        "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1",
        ...fb(96, "nack", "nack pli", "goog-remb"),
        "a=setup:passive",
        "a=mid:1",
        "a=recvonly",
        ...TRANSPORT.slice(4),
      ],
    ]);
  });

  test("to aiortc: sendrecv with a stream we send (msid, ssrc, FID with rtx); the data channel rejected with port 0 and left out of BUNDLE", () => {
    const answer = buildAnswer(offer(aiortc), {
      ...options,
      candidate: { ip: "2001:db8::1", port: 40000 },
      sending: { 1: { streamId: "s1", trackId: "t1", ssrc: 4444, cname: "sfu", rtxSsrc: 5555 } },
    });
    const [session, audio, video, data] = sections(answer);
    expect(session).toContain("a=group:BUNDLE 0 1");
    expect(audio?.slice(0, 2)).toEqual([
      "m=audio 40000 UDP/TLS/RTP/SAVPF 96",
      "c=IN IP6 2001:db8::1",
    ]);
    expect(audio).toContain("a=sendrecv");
    expect(audio?.some((l) => l.startsWith("a=ssrc") || l.startsWith("a=msid:"))).toBe(false);
    expect(video?.[0]).toBe("m=video 40000 UDP/TLS/RTP/SAVPF 97 98 101 102 99 100");
    expect(video).toContain("a=candidate:1 1 udp 2130706431 2001:db8::1 40000 typ host");
    expect(video?.filter((l) => /^a=(msid|ssrc|sendrecv)/.test(l))).toEqual([
      "a=msid:s1 t1",
      "a=sendrecv",
      "a=ssrc:4444 cname:sfu",
      "a=ssrc:4444 msid:s1 t1",
      "a=ssrc:5555 cname:sfu",
      "a=ssrc:5555 msid:s1 t1",
      "a=ssrc-group:FID 4444 5555",
    ]);
    expect(data).toEqual(["m=application 0 DTLS/SCTP 5000", "a=mid:2", "a=inactive"]);
  });

  test("directions: recvonly → sendonly with our stream, a stream is not written when we do not send, inactive stays inactive; an override per mid", () => {
    const recvonly = chromium.replaceAll("a=sendonly", "a=recvonly");
    const sending = { 1: { streamId: "s", trackId: "t", ssrc: 7, cname: "c" } };
    const [, audio, video] = sections(buildAnswer(offer(recvonly), { ...options, sending }));
    expect([audio?.includes("a=sendonly"), video?.includes("a=sendonly")]).toEqual([true, true]);
    expect(video).toContain("a=ssrc:7 cname:c");
    expect(video?.some((l) => l.startsWith("a=ssrc-group"))).toBe(false); // no rtxSsrc given
    const [, , v2] = sections(buildAnswer(offer(chromium), { ...options, sending }));
    expect(v2?.some((l) => l.startsWith("a=ssrc") || l.startsWith("a=msid"))).toBe(false);
    const inactive = chromium.replace("a=sendonly", "a=inactive");
    const [, a3] = sections(buildAnswer(offer(inactive), options));
    expect(a3).toContain("a=inactive");
    const [, a4] = sections(
      buildAnswer(offer(chromium), { ...options, directions: { 0: "inactive" } }),
    );
    expect(a4).toContain("a=inactive");
  });

  test("setup: an offer that is passive gets an active answer, an active one a passive answer", () => {
    const setupOf = (text: string) =>
      sections(buildAnswer(offer(text), options))[1]?.find((l) => l.startsWith("a=setup:"));
    expect(setupOf(chromium.replaceAll("a=setup:actpass", "a=setup:passive"))).toBe(
      "a=setup:active",
    );
    expect(setupOf(chromium.replaceAll("a=setup:actpass", "a=setup:active"))).toBe(
      "a=setup:passive",
    );
    expect(offer(chromium.replaceAll("a=setup:actpass\r\n", "")).setup).toBe("active"); // RFC 4145
  });

  test("m-lines rejected with port 0, inactive, out of BUNDLE: no common codec, not bundled, no rtcp-mux, port 0 in the offer", () => {
    const videoRejected = (text: string) => {
      const answer = buildAnswer(offer(text), options);
      const [session, , video] = sections(answer);
      expect(session).toContain("a=group:BUNDLE 0");
      return video;
    };
    const av1Only = obs.replace("a=rtpmap:96 H264/90000", "a=rtpmap:96 AV1/90000");
    expect(videoRejected(av1Only)).toEqual([
      "m=video 0 UDP/TLS/RTP/SAVPF 96",
      "a=mid:1",
      "a=inactive",
    ]);
    expect(videoRejected(obs.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0"))?.[0]).toBe(
      "m=video 0 UDP/TLS/RTP/SAVPF 96",
    );
    const video = obs.indexOf("m=video");
    const noMux = obs.slice(0, video) + obs.slice(video).replace("a=rtcp-mux\r\n", "");
    expect(videoRejected(noMux)?.[0]).toBe("m=video 0 UDP/TLS/RTP/SAVPF 96");
    expect(videoRejected(obs.replace("m=video 56301", "m=video 0"))?.[0]).toBe(
      "m=video 0 UDP/TLS/RTP/SAVPF 96",
    );
    // an H.264 offer of packetization mode 0 or of another profile only
    expect(videoRejected(obs.replace("packetization-mode=1", "packetization-mode=0"))?.[1]).toBe(
      "a=mid:1",
    );
    expect(
      videoRejected(obs.replace("profile-level-id=42e01f", "profile-level-id=64001f"))?.[1],
    ).toBe("a=mid:1");
  });

  test("configurable: codecs in another preference, feedback and extensions lists", () => {
    const [, audio, video] = sections(
      buildAnswer(offer(chromium), {
        ...options,
        codecs: [
          {
            name: "H264",
            clockRate: 90000,
            h264Profiles: ["42e0"],
            h264PacketizationModes: [0, 1],
          },
          { name: "vp8", clockRate: 90000 },
        ],
        rtcpFb: ["nack pli"],
        extensions: ["urn:ietf:params:rtp-hdrext:sdes:mid"],
      }),
    );
    expect(audio?.[0]).toBe("m=audio 0 UDP/TLS/RTP/SAVPF 111");
    expect(video?.[0]).toBe("m=video 40000 UDP/TLS/RTP/SAVPF 108 109 114 115 96 97");
    expect(video?.filter((l) => l.startsWith("a=rtcp-fb") || l.startsWith("a=extmap"))).toEqual([
      "a=rtcp-fb:108 nack pli",
      "a=rtcp-fb:114 nack pli",
      "a=rtcp-fb:96 nack pli",
      "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    ]);
  });

  test("every answer re-parses with sdp-transform and reads back with parseOffer: same codecs under the offer's numbers", () => {
    for (const text of [chromium, obs, aiortc]) {
      const o = offer(text);
      const answer = buildAnswer(o, options);
      const parsed = sdpTransform.parse(answer);
      expect(parsed.media.length).toBe(o.media.length);
      expect(parsed.icelite).toBe("ice-lite");
      const back = offer(answer);
      expect([back.iceUfrag, back.icePwd, back.fingerprint, back.setup]).toEqual([
        "srvu",
        "serverpasswordserverpw1",
        FP,
        "passive",
      ]);
      for (const [i, m] of back.media.entries()) {
        const offered = o.media[i];
        expect(m.mid).toBe(offered?.mid);
        for (const c of m.codecs) {
          const same = offered?.codecs.find((x) => x.payloadType === c.payloadType);
          expect([same?.name, same?.clockRate, same?.fmtp]).toEqual([c.name, c.clockRate, c.fmtp]);
        }
      }
    }
  });

  test("payload types follow the offer: Chromium's offer renumbered at random answers with the new numbers", () => {
    const video = offer(chromium).media[1];
    const pts = video?.codecs.map((c) => c.payloadType) ?? [];
    const free = [...Array(128).keys()].filter((n) => n !== 111 && (n < 64 || n > 95));
    fc.assert(
      fc.property(
        fc.shuffledSubarray(free, { minLength: pts.length, maxLength: pts.length }),
        (to) => {
          const map = new Map(pts.map((p, i) => [p, to[i] as number]));
          const renumber = (line: string) =>
            line
              .replace(
                /^(a=(?:rtpmap|fmtp|rtcp-fb):)(\d+)/,
                (_m, a, n) => `${a}${map.get(Number(n)) ?? n}`,
              )
              .replace(/apt=(\d+)/, (_m, n) => `apt=${map.get(Number(n))}`)
              .replace(
                /^(m=video \d+ \S+) (.*)$/,
                (_m, a, list: string) =>
                  `${a} ${list
                    .split(" ")
                    .map((n) => map.get(Number(n)))
                    .join(" ")}`,
              );
          const at = chromium.indexOf("m=video");
          const text =
            chromium.slice(0, at) + chromium.slice(at).split("\r\n").map(renumber).join("\r\n");
          const [, , answered] = sections(buildAnswer(offer(text), options));
          const want = [96, 97, 108, 109, 102, 103].map((p) => map.get(p));
          expect(answered?.[0]).toBe(`m=video 40000 UDP/TLS/RTP/SAVPF ${want.join(" ")}`);
          expect(answered).toContain(`a=fmtp:${map.get(97)} apt=${map.get(96)}`);
        },
      ),
      { numRuns: 100, seed: 16 },
    );
  });
});

describe("SDP: refusals and hostile input", () => {
  test("each refusal has its reason", () => {
    const reason = (t: string) => {
      const r = parseOffer(t);
      return r.ok ? "ok" : r.reason;
    };
    expect([chromium, obs, aiortc].map(reason)).toEqual(["ok", "ok", "ok"]);
    expect(reason(`${obs}a=x:${"y".repeat(300_000)}\r\n`)).toBe("sdp-too-large");
    expect(reason("hello")).toBe("sdp-unparseable");
    expect(reason("")).toBe("sdp-unparseable");
    expect(reason("v=0\r\ns=-\r\nt=0 0\r\n")).toBe("sdp-no-media");
    expect(reason(obs.replaceAll("UDP/TLS/RTP/SAVPF", "RTP/AVP"))).toBe("sdp-not-webrtc");
    expect(reason(obs.replace(/a=group:BUNDLE.*\r\n/, ""))).toBe("sdp-no-bundle");
    expect(reason(obs.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 7"))).toBe("sdp-no-bundle");
    expect(reason(obs.replace(/a=ice-(ufrag|pwd):.*\r\n/g, ""))).toBe("sdp-no-ice-credentials");
    expect(reason(obs.replace("a=ice-ufrag:pYQx", "a=ice-ufrag:p:Qx"))).toBe(
      "sdp-bad-ice-credentials",
    );
    expect(reason(obs.replace("a=ice-pwd:WZ5f0DXM1ZPX9ITn2zUY3s", "a=ice-pwd:short"))).toBe(
      "sdp-bad-ice-credentials",
    );
    expect(reason(obs.replace(/a=fingerprint:.*\r\n/, ""))).toBe("sdp-no-fingerprint");
    expect(reason(obs.replace("sha-256", "sha-1"))).toBe("sdp-unsupported-fingerprint");
    expect(reason(obs.replace("1D:9B:", "1D9B"))).toBe("sdp-bad-fingerprint");
    expect(reason(obs.replace("a=setup:actpass", "a=setup:holdconn"))).toBe("sdp-bad-setup");
  });

  // sdp-transform's regular expressions make each input ~0.15 ms (~0.25 ms on a slower machine):
  // the full count runs in test/webrtc/fuzz-all.ts.
  test("fuzz: 5,000 mutated offers never throw, each is accepted or refused with a reason", () => {
    const [report] = checkFuzz(targets, 5_000, 0x5eed, "sdp-");
    expect(report?.count).toBe(5_000);
    expect(Object.keys(report?.rejected ?? {}).length).toBeGreaterThan(5);
  }, 30_000);
});
