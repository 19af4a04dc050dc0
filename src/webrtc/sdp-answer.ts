/**
 * The answer of an ICE-lite, DTLS-passive answerer (an SFU, a WHIP/WHEP server) to an offer read
 * by `parseOffer`: `a=ice-lite`, its credentials and fingerprint (at media or session level), the
 * setup role (passive, active when the offer is passive), one UDP host candidate and
 * `a=end-of-candidates`, `a=rtcp-mux`, BUNDLE of the m-lines taken; per m-line the codecs both
 * sides have — matched by name and clock rate (H.264 also by profile and packetization mode),
 * keeping the OFFER's payload types and fmtp, in the answerer's order of preference, each
 * followed by its rtx — with the rtcp-fb and header extensions (the offer's ids) it supports, the
 * direction answered, and `a=msid`/`a=ssrc` for the streams it sends. An m-line it cannot take
 * (no common codec, not bundled, no rtcp-mux, not audio/video on DTLS-SRTP) is rejected: port 0,
 * inactive, out of BUNDLE. Everything comes from the offer and a plain options object.
 */
import sdpTransform from "sdp-transform";
import type { SdpCodec, SdpDirection, SdpMedia, SdpOffer } from "./sdp.ts";

/** A codec the answerer takes. */
export interface SupportedCodec {
  /** Matched without regard to case. */
  readonly name: string;
  readonly clockRate: number;
  /** When given, the offer's channels (1 when it gives none) must equal it. */
  readonly channels?: number;
  /**
   * For H.264: profile-level-id prefixes taken (profile_idc and constraint flags, e.g. "42e0"
   * constrained baseline), in order of preference; the level is the offer's. A missing
   * profile-level-id is 420010 (RFC 6184).
   */
  readonly h264Profiles?: readonly string[];
  /** For H.264: packetization modes taken (default [1]; a missing one is 0). */
  readonly h264PacketizationModes?: readonly number[];
}

/** A stream the answerer sends on an m-line. */
export interface SendingStream {
  readonly streamId: string;
  readonly trackId: string;
  readonly ssrc: number;
  readonly cname: string;
  /** Its retransmission SSRC (`a=ssrc-group:FID`), written when an rtx codec is kept. */
  readonly rtxSsrc?: number;
}

/** What the answerer supports and says about itself. */
export interface AnswerOptions {
  readonly iceUfrag: string;
  readonly icePwd: string;
  /** The answerer's certificate fingerprint (sha-256, hex pairs joined by ':'). */
  readonly fingerprint: string;
  /** The one host candidate (UDP), also the m-lines' address and port. */
  readonly candidate: { readonly ip: string; readonly port: number };
  /** Where ice-ufrag, ice-pwd and fingerprint go (default "media": in every m-line taken). */
  readonly credentialsAt?: "media" | "session";
  /** Codecs taken, in the answerer's preference (default `DEFAULT_CODECS`). */
  readonly codecs?: readonly SupportedCodec[];
  /** rtcp-fb values kept (default `DEFAULT_RTCP_FB`). */
  readonly rtcpFb?: readonly string[];
  /** Header extension URIs kept (default `DEFAULT_EXTENSIONS`). */
  readonly extensions?: readonly string[];
  /** Per mid: the direction to answer (default: the mirror of the offer's). */
  readonly directions?: Readonly<Record<string, SdpDirection>>;
  /** Per mid: the stream the answerer sends (written only if the direction answered sends). */
  readonly sending?: Readonly<Record<string, SendingStream>>;
}

/** The default codecs: Opus 48000/2, VP8, H.264 constrained baseline then baseline, mode 1. */
export const DEFAULT_CODECS: readonly SupportedCodec[] = [
  { name: "opus", clockRate: 48000, channels: 2 },
  { name: "VP8", clockRate: 90000 },
  { name: "H264", clockRate: 90000, h264Profiles: ["42e0", "4200"], h264PacketizationModes: [1] },
];
/** The default rtcp-fb kept. */
export const DEFAULT_RTCP_FB: readonly string[] = [
  "nack",
  "nack pli",
  "ccm fir",
  "goog-remb",
  "transport-cc",
];
/** The default header extensions kept. */
export const DEFAULT_EXTENSIONS: readonly string[] = [
  "urn:ietf:params:rtp-hdrext:sdes:mid",
  "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
  "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
  "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
  "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
];

/** The `a=fmtp` parameters of `codec` by lower-case name ("profile-level-id" → "42e01f"). */
export function fmtpParameters(codec: SdpCodec): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const part of (codec.fmtp ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) out.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return out;
}

const MIRROR: Record<SdpDirection, SdpDirection> = {
  sendonly: "recvonly",
  recvonly: "sendonly",
  sendrecv: "sendrecv",
  inactive: "inactive",
};

/** [codec preference, profile preference] of an offered codec the answerer takes, or undefined. */
function rank(codec: SdpCodec, supported: readonly SupportedCodec[]): [number, number] | undefined {
  for (const [i, s] of supported.entries()) {
    if (s.name.toLowerCase() !== codec.name.toLowerCase() || s.clockRate !== codec.clockRate)
      continue;
    if (s.channels !== undefined && (codec.channels ?? 1) !== s.channels) continue;
    if (s.h264Profiles === undefined) return [i, 0];
    const params = fmtpParameters(codec);
    const plid = (params.get("profile-level-id") ?? "420010").toLowerCase();
    const mode = Number(params.get("packetization-mode") ?? "0");
    if (!(s.h264PacketizationModes ?? [1]).includes(mode)) continue;
    const p = s.h264Profiles.findIndex((x) => plid.startsWith(x.toLowerCase()));
    if (p >= 0 && /^[0-9a-f]{6}$/.test(plid)) return [i, p];
  }
  return undefined;
}

/** The codecs of `m` the answerer takes, best first, each followed by its rtx if offered. */
function negotiate(m: SdpMedia, supported: readonly SupportedCodec[]): SdpCodec[] {
  const ranked = m.codecs.flatMap((c) => {
    const r = rank(c, supported);
    return r === undefined ? [] : [{ c, r }];
  });
  ranked.sort((a, b) => a.r[0] - b.r[0] || a.r[1] - b.r[1]);
  return ranked.flatMap(({ c }) => {
    const rtx = m.codecs.find(
      (x) =>
        x.name.toLowerCase() === "rtx" &&
        x.clockRate === c.clockRate &&
        fmtpParameters(x).get("apt") === String(c.payloadType),
    );
    return rtx === undefined ? [c] : [c, rtx];
  });
}

/** The answer to `offer` (CRLF-terminated SDP text); see the module comment. */
export function buildAnswer(offer: SdpOffer, options: AnswerOptions): string {
  const supported = options.codecs ?? DEFAULT_CODECS;
  const fbKept = new Set(options.rtcpFb ?? DEFAULT_RTCP_FB);
  const extKept = new Set(options.extensions ?? DEFAULT_EXTENSIONS);
  const atSession = options.credentialsAt === "session";
  const transport = {
    iceUfrag: options.iceUfrag,
    icePwd: options.icePwd,
    fingerprint: { type: "sha-256", hash: options.fingerprint },
  };
  const setup = offer.setup === "passive" ? "active" : "passive";
  const ipVer = options.candidate.ip.includes(":") ? 6 : 4;
  const accepted: string[] = [];
  const media = offer.media.map((m): sdpTransform.MediaDescription => {
    const codecs = negotiate(m, supported);
    const mid = m.mid;
    const base = { type: m.kind, protocol: m.protocol, ...(mid === undefined ? {} : { mid }) };
    const takes =
      (m.kind === "audio" || m.kind === "video") &&
      /^(UDP\/TLS\/RTP\/SAVPF|RTP\/SAVPF)$/.test(m.protocol) &&
      m.port !== 0 &&
      m.rtcpMux &&
      codecs.length > 0 &&
      mid !== undefined &&
      offer.bundle.includes(mid);
    if (!takes || mid === undefined) {
      const payloads = m.formats.split(" ").find((f) => f !== "") ?? "0";
      return { ...base, port: 0, payloads, direction: "inactive", rtp: [], fmtp: [] };
    }
    accepted.push(mid);
    const direction = options.directions?.[mid] ?? MIRROR[m.direction];
    const send =
      direction === "sendonly" || direction === "sendrecv" ? options.sending?.[mid] : undefined;
    const hasRtx = codecs.some((c) => c.name.toLowerCase() === "rtx");
    return {
      ...base,
      port: options.candidate.port,
      payloads: codecs.map((c) => c.payloadType).join(" "),
      connection: { version: ipVer, ip: options.candidate.ip },
      ...(atSession ? {} : transport),
      setup,
      direction,
      rtcpMux: "rtcp-mux",
      rtp: codecs.map((c) => ({
        payload: c.payloadType,
        codec: c.name,
        rate: c.clockRate,
        ...(c.channels === undefined ? {} : { encoding: c.channels }),
      })),
      fmtp: codecs.flatMap((c) =>
        c.fmtp === undefined ? [] : [{ payload: c.payloadType, config: c.fmtp }],
      ),
      rtcpFb: codecs.flatMap((c) =>
        [...new Set(c.rtcpFb)]
          .filter((f) => fbKept.has(f))
          .map((f) => {
            const [type, subtype] = f.split(" ");
            return { payload: c.payloadType, type: String(type), ...(subtype ? { subtype } : {}) };
          }),
      ),
      ext: m.extensions.filter((e) => extKept.has(e.uri)).map((e) => ({ value: e.id, uri: e.uri })),
      candidates: [
        {
          foundation: "1",
          component: 1,
          transport: "udp",
          priority: 2130706431,
          ip: options.candidate.ip,
          port: options.candidate.port,
          type: "host",
        },
      ],
      endOfCandidates: "end-of-candidates",
      ...(send === undefined ? {} : streamLines(send, hasRtx)),
    };
  });
  const session: sdpTransform.SessionDescription = {
    version: 0,
    origin: {
      username: "-",
      sessionId: "1",
      sessionVersion: 1,
      netType: "IN",
      ipVer: 4,
      address: "127.0.0.1",
    },
    name: "-",
    timing: { start: 0, stop: 0 },
    icelite: "ice-lite",
    ...(atSession ? transport : {}),
    ...(accepted.length > 0 ? { groups: [{ type: "BUNDLE", mids: accepted.join(" ") }] } : {}),
    msidSemantic: { semantic: "WMS", token: "*" },
    media,
  };
  return sdpTransform.write(session);
}

/** `a=msid`, `a=ssrc` (cname, msid) and, with rtx, `a=ssrc-group:FID` for `send`. */
function streamLines(
  send: SendingStream,
  hasRtx: boolean,
): Pick<sdpTransform.MediaDescription, "msid" | "ssrcs" | "ssrcGroups"> {
  const msid = `${send.streamId} ${send.trackId}`;
  const ssrcs = hasRtx && send.rtxSsrc !== undefined ? [send.ssrc, send.rtxSsrc] : [send.ssrc];
  return {
    msid: [{ id: send.streamId, appdata: send.trackId }],
    ssrcs: ssrcs.flatMap((id) => [
      { id, attribute: "cname", value: send.cname },
      { id, attribute: "msid", value: msid },
    ]),
    ...(ssrcs.length > 1 ? { ssrcGroups: [{ semantics: "FID", ssrcs: ssrcs.join(" ") }] } : {}),
  };
}
