/**
 * SDP offers for a WebRTC answerer that is ICE-lite and DTLS-passive (an SFU, a WHIP/WHEP
 * server), read with `sdp-transform`. `parseOffer` takes from an offer what the answer needs:
 * BUNDLE, the transport of its tagged m-line (ICE credentials at media or session level — OBS
 * puts them at session level —, the DTLS fingerprint and setup role, candidates if any), and per
 * m-line the codecs (by name and clock rate, never by payload type number), header extensions,
 * msid, SSRCs and RTX pairs. An offer it cannot answer is refused with a reason; it never throws.
 * `buildAnswer` (sdp-answer.ts, re-exported here) writes the answer. Pure: no I/O, no randomness.
 */
import sdpTransform from "sdp-transform";
import { accept, type Parsed, reject } from "./reject.ts";

export * from "./sdp-answer.ts";

/** Why `parseOffer` refused an offer. */
export type SdpReason =
  /** Over `SDP_MAX_LENGTH` characters. */
  | "sdp-too-large"
  /** Not SDP: the first line is not `v=0`. */
  | "sdp-unparseable"
  | "sdp-no-media"
  /** No audio or video m-line on a DTLS-SRTP profile (UDP/TLS/RTP/SAVPF, RTP/SAVPF). */
  | "sdp-not-webrtc"
  /** No `a=group:BUNDLE`, or its first mid names no such m-line. */
  | "sdp-no-bundle"
  | "sdp-no-ice-credentials"
  /** ICE credentials outside RFC 8839 (ice-chars; ufrag 4–256, pwd 22–256 characters). */
  | "sdp-bad-ice-credentials"
  | "sdp-no-fingerprint"
  /** A fingerprint with another hash than sha-256. */
  | "sdp-unsupported-fingerprint"
  /** A sha-256 fingerprint that is not 32 hex pairs joined by ':'. */
  | "sdp-bad-fingerprint"
  /** `a=setup` other than actpass, active or passive. */
  | "sdp-bad-setup";

/** The longest offer read (characters): far above a real one, a bound on a hostile one. */
export const SDP_MAX_LENGTH = 256 * 1024;

/** An m-line's or answer's direction. */
export type SdpDirection = "sendrecv" | "sendonly" | "recvonly" | "inactive";

/** A codec of an m-line. */
export interface SdpCodec {
  /** 0 to 127, as the offer numbers it. */
  readonly payloadType: number;
  /** As the offer spells it ("opus", "VP8", "H264", "rtx"...). */
  readonly name: string;
  readonly clockRate: number;
  /** Audio channels when the rtpmap gives them. */
  readonly channels?: number;
  /** The `a=fmtp` parameters as written ("minptime=10;useinbandfec=1"). */
  readonly fmtp?: string;
  /** `a=rtcp-fb` values, this payload type's and the `*` ones ("nack", "nack pli", "ccm fir"...). */
  readonly rtcpFb: readonly string[];
}

/** One m-line of an offer. */
export interface SdpMedia {
  /** Absent when the m-line has no `a=mid` (it cannot be bundled then). */
  readonly mid?: string;
  /** "audio", "video", "application"... */
  readonly kind: string;
  readonly port: number;
  readonly protocol: string;
  /** The m= line's format list as written ("111 63 9 0", "5000", "webrtc-datachannel"). */
  readonly formats: string;
  /** The m-line's, else the session's, else sendrecv. */
  readonly direction: SdpDirection;
  readonly rtcpMux: boolean;
  /** The codecs with an `a=rtpmap`, in the offer's order. */
  readonly codecs: readonly SdpCodec[];
  /** `a=extmap` ids (1–255) and URIs: the m-line's, else the session's. */
  readonly extensions: readonly { readonly id: number; readonly uri: string }[];
  /** `a=msid` as written ("stream track"), if any. */
  readonly msid?: string;
  /** The CNAME of the first `a=ssrc` that has one. */
  readonly cname?: string;
  /** SSRCs the offerer sends on this m-line (`a=ssrc`), in order. */
  readonly ssrcs: readonly number[];
  /** RTX pairs from `a=ssrc-group:FID`: media SSRC → its rtx SSRC. */
  readonly rtx: ReadonlyMap<number, number>;
}

/** An ICE candidate of the offer. */
export interface SdpCandidate {
  readonly ip: string;
  readonly port: number;
  /** Lower case: "udp" or "tcp". */
  readonly transport: string;
  /** "host", "srflx", "prflx" or "relay". */
  readonly type: string;
  readonly priority: number;
}

/** What an answerer needs from an offer. */
export interface SdpOffer {
  /** The BUNDLE transport's ICE credentials (its tagged m-line's, else the session's). */
  readonly iceUfrag: string;
  readonly icePwd: string;
  /** The sha-256 fingerprint: 32 hex pairs joined by ':', as written. */
  readonly fingerprint: string;
  /** The offerer's DTLS role (RFC 4145: "active" when the offer says nothing). */
  readonly setup: "actpass" | "active" | "passive";
  /** The mids of the first `a=group:BUNDLE`, the tag first. */
  readonly bundle: readonly string[];
  readonly media: readonly SdpMedia[];
  /** The tagged m-line's candidates (none with trickle ICE). */
  readonly candidates: readonly SdpCandidate[];
}

const DIRECTIONS: ReadonlySet<string> = new Set(["sendrecv", "sendonly", "recvonly", "inactive"]);
const ICE_CHARS = /^[A-Za-z0-9+/]+$/;
const SHA256 = /^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/;
const RTP_DTLS = /^(UDP\/TLS\/RTP\/SAVPF|RTP\/SAVPF)$/;

/** `v` when it is an integer in [min, max] (sdp-transform gives numbers or strings). */
function int(v: unknown, min: number, max: number): number | undefined {
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= min && n <= max ? n : undefined;
}

/** `v` as a string, or undefined when absent (sdp-transform turns digit strings into numbers). */
function str(v: unknown): string | undefined {
  return typeof v === "string" || typeof v === "number" ? String(v) : undefined;
}

/** Reads `text` as an offer (see the module comment); never throws. */
export function parseOffer(text: string): Parsed<SdpOffer, SdpReason> {
  if (text.length > SDP_MAX_LENGTH) return reject("sdp-too-large");
  if (!/^v=0\r?\n/.test(text)) return reject("sdp-unparseable");
  let s: sdpTransform.SessionDescription;
  try {
    s = sdpTransform.parse(text);
  } catch {
    return reject("sdp-unparseable");
  }
  if (s.media.length === 0) return reject("sdp-no-media");
  const media = s.media.map((m) => readMedia(m, s));
  if (!media.some((m) => (m.kind === "audio" || m.kind === "video") && RTP_DTLS.test(m.protocol)))
    return reject("sdp-not-webrtc");
  const group = s.groups?.find((g) => g.type === "BUNDLE");
  const bundle = (str(group?.mids) ?? "").split(" ").filter((x) => x !== "");
  const tagIndex = media.findIndex((m) => m.mid !== undefined && m.mid === bundle[0]);
  const tag = s.media[tagIndex];
  if (tag === undefined) return reject("sdp-no-bundle");
  const ufrag = str(tag.iceUfrag ?? s.iceUfrag);
  const pwd = str(tag.icePwd ?? s.icePwd);
  if (ufrag === undefined || pwd === undefined) return reject("sdp-no-ice-credentials");
  if (!credentialsValid(ufrag, pwd)) return reject("sdp-bad-ice-credentials");
  const fp = tag.fingerprint ?? s.fingerprint;
  if (fp === undefined) return reject("sdp-no-fingerprint");
  if (str(fp.type)?.toLowerCase() !== "sha-256") return reject("sdp-unsupported-fingerprint");
  const hash = str(fp.hash) ?? "";
  if (!SHA256.test(hash)) return reject("sdp-bad-fingerprint");
  const setup = str(tag.setup ?? s.setup) ?? "active";
  if (setup !== "actpass" && setup !== "active" && setup !== "passive")
    return reject("sdp-bad-setup");
  return accept({
    iceUfrag: ufrag,
    icePwd: pwd,
    fingerprint: hash,
    setup,
    bundle,
    media,
    candidates: candidatesOf(tag),
  });
}

/** Whether ICE credentials follow RFC 8839 §5.4. */
function credentialsValid(ufrag: string, pwd: string): boolean {
  return (
    ICE_CHARS.test(ufrag) &&
    ICE_CHARS.test(pwd) &&
    ufrag.length >= 4 &&
    ufrag.length <= 256 &&
    pwd.length >= 22 &&
    pwd.length <= 256
  );
}

function candidatesOf(m: sdpTransform.MediaDescription): SdpCandidate[] {
  const out: SdpCandidate[] = [];
  for (const c of m.candidates ?? []) {
    const port = int(c.port, 0, 65535);
    const priority = int(c.priority, 0, 2 ** 32 - 1);
    const ip = str(c.ip);
    if (port === undefined || priority === undefined || ip === undefined) continue;
    const transport = str(c.transport)?.toLowerCase() ?? "";
    out.push({ ip, port, transport, type: str(c.type) ?? "", priority });
  }
  return out;
}

function readMedia(m: sdpTransform.MediaDescription, s: sdpTransform.SessionDescription): SdpMedia {
  const mid = str(m.mid);
  const direction = str(m.direction ?? s.direction) ?? "sendrecv";
  const msid = m.msid?.[0];
  const cname = m.ssrcs?.find((x) => x.attribute === "cname")?.value;
  return {
    ...(mid === undefined ? {} : { mid }),
    kind: str(m.type) ?? "",
    port: int(m.port, 0, 65535) ?? 0,
    protocol: str(m.protocol) ?? "",
    formats: str(m.payloads) ?? "",
    direction: DIRECTIONS.has(direction) ? (direction as SdpDirection) : "sendrecv",
    rtcpMux: m.rtcpMux !== undefined,
    codecs: codecsOf(m),
    extensions: (m.ext ?? s.ext ?? []).flatMap((e) => {
      const id = int(e.value, 1, 255);
      const uri = str(e.uri);
      return id === undefined || uri === undefined ? [] : [{ id, uri }];
    }),
    ...(msid === undefined ? {} : { msid: [msid.id, msid.appdata].filter((x) => x).join(" ") }),
    ...(cname === undefined ? {} : { cname: String(cname) }),
    ssrcs: [...new Set((m.ssrcs ?? []).flatMap((x) => int(x.id, 0, 2 ** 32 - 1) ?? []))],
    rtx: fidPairs(m),
  };
}

function codecsOf(m: sdpTransform.MediaDescription): SdpCodec[] {
  const fmtp = new Map<number, string>();
  for (const f of m.fmtp) {
    const pt = int(f.payload, 0, 127);
    if (pt !== undefined && !fmtp.has(pt)) fmtp.set(pt, String(f.config));
  }
  const fb = new Map<number | "*", string[]>();
  for (const f of m.rtcpFb ?? []) {
    const pt = f.payload === "*" ? "*" : int(f.payload, 0, 127);
    if (pt === undefined) continue;
    const list = fb.get(pt) ?? [];
    list.push(f.subtype ? `${f.type} ${f.subtype}` : String(f.type));
    fb.set(pt, list);
  }
  const out: SdpCodec[] = [];
  for (const r of m.rtp) {
    const payloadType = int(r.payload, 0, 127);
    const clockRate = int(r.rate, 1, 2 ** 32 - 1);
    const name = str(r.codec);
    if (payloadType === undefined || clockRate === undefined || !name) continue;
    if (out.some((c) => c.payloadType === payloadType)) continue;
    const channels = int(r.encoding, 1, 255);
    const f = fmtp.get(payloadType);
    out.push({
      payloadType,
      name,
      clockRate,
      ...(channels === undefined ? {} : { channels }),
      ...(f === undefined ? {} : { fmtp: f }),
      rtcpFb: [...(fb.get(payloadType) ?? []), ...(fb.get("*") ?? [])],
    });
  }
  return out;
}

function fidPairs(m: sdpTransform.MediaDescription): Map<number, number> {
  const rtx = new Map<number, number>();
  for (const g of m.ssrcGroups ?? []) {
    if (g.semantics !== "FID") continue;
    const [a, b] = String(g.ssrcs)
      .split(" ")
      .map((x) => int(x, 0, 2 ** 32 - 1));
    if (a !== undefined && b !== undefined) rtx.set(a, b);
  }
  return rtx;
}
