/**
 * DTLS 1.2 hello messages (RFC 6347 §4.2.1, RFC 5246 §7.4.1) and the extensions a WebRTC
 * handshake negotiates: use_srtp (RFC 5764), extended_master_secret (RFC 7627),
 * renegotiation_info (RFC 5746), supported_groups, ec_point_formats, signature_algorithms, and
 * supported_versions (a 1.3 offer, which a 1.2 server answers with 1.2). `parseClientHello` reads
 * a reassembled ClientHello body; `writeServerHello` and `writeHelloVerifyRequest` build bodies.
 * Wire input is never thrown on.
 */
import { accept, type Parsed, reject } from "../reject.ts";

/** Handshake message types. */
export const HandshakeType = {
  CLIENT_HELLO: 1,
  SERVER_HELLO: 2,
  HELLO_VERIFY_REQUEST: 3,
  CERTIFICATE: 11,
  SERVER_KEY_EXCHANGE: 12,
  CERTIFICATE_REQUEST: 13,
  SERVER_HELLO_DONE: 14,
  CERTIFICATE_VERIFY: 15,
  CLIENT_KEY_EXCHANGE: 16,
  FINISHED: 20,
} as const;

/** Extension types. */
export const ExtensionType = {
  SUPPORTED_GROUPS: 10,
  EC_POINT_FORMATS: 11,
  SIGNATURE_ALGORITHMS: 13,
  USE_SRTP: 14,
  EXTENDED_MASTER_SECRET: 23,
  SUPPORTED_VERSIONS: 43,
  RENEGOTIATION_INFO: 0xff01,
} as const;

/** TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256. */
export const CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256 = 0xc02b;
/** secp256r1 in supported_groups. */
export const GROUP_SECP256R1 = 23;
/** ecdsa_secp256r1_sha256 in signature_algorithms. */
export const SIG_ECDSA_SECP256R1_SHA256 = 0x0403;
/** DTLS 1.2's wire version. */
export const DTLS12 = 0xfefd;

/** Why a hello was refused. */
export type HelloReason = "dtls-bad-hello";

/** What a server needs from a ClientHello. */
export interface ClientHello {
  readonly version: number;
  readonly random: Uint8Array;
  readonly sessionId: Uint8Array;
  readonly cookie: Uint8Array;
  readonly cipherSuites: readonly number[];
  /** Extensions by type: views of their data. */
  readonly extensions: ReadonlyMap<number, Uint8Array>;
  /** use_srtp protection profiles offered (empty when the extension is absent or malformed). */
  readonly srtpProfiles: readonly number[];
  readonly extendedMasterSecret: boolean;
  readonly supportedGroups: readonly number[];
  readonly signatureAlgorithms: readonly number[];
  /** supported_versions offered (empty when absent). */
  readonly supportedVersions: readonly number[];
}

/** A bounds-checked reader; `ok` turns false at the first read past the end. */
class Reader {
  at = 0;
  ok = true;
  constructor(readonly b: Uint8Array) {}
  u8(): number {
    if (this.at + 1 > this.b.length) return this.#fail();
    return this.b[this.at++] as number;
  }
  u16(): number {
    return (this.u8() << 8) | this.u8();
  }
  bytes(n: number): Uint8Array {
    if (this.at + n > this.b.length) {
      this.#fail();
      return new Uint8Array(0);
    }
    const v = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
  #fail(): number {
    this.ok = false;
    this.at = this.b.length;
    return 0;
  }
}

function u16List(data: Uint8Array | undefined, lengthBytes: 1 | 2): number[] {
  if (data === undefined) return [];
  const r = new Reader(data);
  const n = lengthBytes === 1 ? r.u8() : r.u16();
  const list = r.bytes(n);
  if (!r.ok || n % 2 !== 0) return [];
  const out: number[] = [];
  for (let i = 0; i < n; i += 2) out.push(((list[i] as number) << 8) | (list[i + 1] as number));
  return out;
}

/** The extensions block at `r` (absent: none), by type; undefined when it overruns. */
function readExtensions(r: Reader): Map<number, Uint8Array> | undefined {
  const extensions = new Map<number, Uint8Array>();
  if (!r.ok || r.at >= r.b.length) return extensions;
  const all = new Reader(r.bytes(r.u16()));
  while (all.ok && all.at < all.b.length) {
    const type = all.u16();
    const data = all.bytes(all.u16());
    if (all.ok) extensions.set(type, data);
  }
  return all.ok ? extensions : undefined;
}

/** Reads a reassembled ClientHello body. */
export function parseClientHello(body: Uint8Array): Parsed<ClientHello, HelloReason> {
  const r = new Reader(body);
  const version = r.u16();
  const random = r.bytes(32);
  const sessionId = r.bytes(r.u8());
  const cookie = r.bytes(r.u8());
  const suites = r.bytes(r.u16());
  r.bytes(r.u8()); // compression methods
  const extensions = readExtensions(r);
  if (extensions === undefined) return reject("dtls-bad-hello", "extensions overrun");
  if (!r.ok || suites.length % 2 !== 0 || random.length !== 32)
    return reject("dtls-bad-hello", "truncated");
  const cipherSuites: number[] = [];
  for (let i = 0; i < suites.length; i += 2)
    cipherSuites.push(((suites[i] as number) << 8) | (suites[i + 1] as number));
  const srtp = extensions.get(ExtensionType.USE_SRTP);
  return accept({
    version,
    random,
    sessionId,
    cookie,
    cipherSuites,
    extensions,
    srtpProfiles: u16List(srtp, 2),
    extendedMasterSecret: extensions.has(ExtensionType.EXTENDED_MASTER_SECRET),
    supportedGroups: u16List(extensions.get(ExtensionType.SUPPORTED_GROUPS), 2),
    signatureAlgorithms: u16List(extensions.get(ExtensionType.SIGNATURE_ALGORITHMS), 2),
    supportedVersions: u16List(extensions.get(ExtensionType.SUPPORTED_VERSIONS), 1),
  });
}

/** A growing byte writer. */
class Writer {
  readonly #parts: number[] = [];
  u8(v: number): this {
    this.#parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v >>> 8).u8(v);
  }
  bytes(b: Uint8Array): this {
    for (const x of b) this.#parts.push(x);
    return this;
  }
  done(): Uint8Array {
    return Uint8Array.from(this.#parts);
  }
}

/** The body of a HelloVerifyRequest carrying `cookie` (at most 255 bytes). */
export function writeHelloVerifyRequest(cookie: Uint8Array): Uint8Array {
  if (cookie.length > 255) throw new RangeError("a DTLS cookie is at most 255 bytes");
  return new Writer().u16(DTLS12).u8(cookie.length).bytes(cookie).done();
}

/** Extensions `[type, data]` as an extensions block body (without its length). */
function extensionBlock(list: readonly (readonly [number, readonly number[]])[]): Uint8Array {
  const w = new Writer();
  for (const [type, data] of list) w.u16(type).u16(data.length).bytes(Uint8Array.from(data));
  return w.done();
}

function u16s(values: readonly number[]): number[] {
  return values.flatMap((v) => [v >>> 8, v & 0xff]);
}

/** use_srtp's data: the profiles (2 bytes each) and an empty MKI. */
function useSrtp(profiles: readonly number[]): number[] {
  return [...u16s([profiles.length * 2]), ...u16s(profiles), 0];
}

/**
 * The body of a ServerHello choosing `cipherSuite` and SRTP profile `srtpProfile`, with
 * extended_master_secret, an empty renegotiation_info and uncompressed EC points; no session id
 * (no resumption).
 */
export function writeServerHello(
  random: Uint8Array,
  cipherSuite: number,
  srtpProfile: number,
): Uint8Array {
  if (random.length !== 32) throw new RangeError("a hello random is 32 bytes");
  const ext = extensionBlock([
    [ExtensionType.RENEGOTIATION_INFO, [0]],
    [ExtensionType.EXTENDED_MASTER_SECRET, []],
    [ExtensionType.USE_SRTP, useSrtp([srtpProfile])],
    [ExtensionType.EC_POINT_FORMATS, [1, 0]],
  ]);
  return new Writer()
    .u16(DTLS12)
    .bytes(random)
    .u8(0)
    .u16(cipherSuite)
    .u8(0)
    .u16(ext.length)
    .bytes(ext)
    .done();
}

/**
 * The body of a WebRTC client's ClientHello: DTLS 1.2, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
 * no compression, no session id; `cookie` from a HelloVerifyRequest (empty at first); the SRTP
 * profiles offered, P-256, ecdsa_secp256r1_sha256, extended_master_secret, renegotiation_info and
 * uncompressed points.
 */
export function writeClientHello(
  random: Uint8Array,
  cookie: Uint8Array,
  srtpProfiles: readonly number[],
): Uint8Array {
  if (random.length !== 32) throw new RangeError("a hello random is 32 bytes");
  if (cookie.length > 255) throw new RangeError("a DTLS cookie is at most 255 bytes");
  if (srtpProfiles.length === 0) throw new RangeError("offer at least one SRTP profile");
  const ext = extensionBlock([
    [ExtensionType.RENEGOTIATION_INFO, [0]],
    [ExtensionType.EXTENDED_MASTER_SECRET, []],
    [ExtensionType.USE_SRTP, useSrtp(srtpProfiles)],
    [ExtensionType.SUPPORTED_GROUPS, u16s([2, GROUP_SECP256R1])],
    [ExtensionType.EC_POINT_FORMATS, [1, 0]],
    [ExtensionType.SIGNATURE_ALGORITHMS, u16s([2, SIG_ECDSA_SECP256R1_SHA256])],
  ]);
  return new Writer()
    .u16(DTLS12)
    .bytes(random)
    .u8(0)
    .u8(cookie.length)
    .bytes(cookie)
    .u16(2)
    .u16(CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256)
    .u8(1)
    .u8(0)
    .u16(ext.length)
    .bytes(ext)
    .done();
}

/** What a client needs from a ServerHello. */
export interface ServerHello {
  readonly version: number;
  readonly random: Uint8Array;
  readonly cipherSuite: number;
  readonly compression: number;
  /** The one SRTP profile chosen (undefined when use_srtp is absent or malformed). */
  readonly srtpProfile: number | undefined;
  readonly extendedMasterSecret: boolean;
}

/** Reads a reassembled ServerHello body. */
export function parseServerHello(body: Uint8Array): Parsed<ServerHello, HelloReason> {
  const r = new Reader(body);
  const version = r.u16();
  const random = r.bytes(32);
  r.bytes(r.u8()); // session id
  const cipherSuite = r.u16();
  const compression = r.u8();
  const extensions = readExtensions(r);
  if (extensions === undefined) return reject("dtls-bad-hello", "extensions overrun");
  if (!r.ok || r.at !== body.length) return reject("dtls-bad-hello", "truncated or trailing bytes");
  const srtp = extensions.get(ExtensionType.USE_SRTP);
  const profiles = u16List(srtp, 2);
  return accept({
    version,
    random,
    cipherSuite,
    compression,
    srtpProfile: profiles.length === 1 ? profiles[0] : undefined,
    extendedMasterSecret: extensions.has(ExtensionType.EXTENDED_MASTER_SECRET),
  });
}

/** The cookie of a HelloVerifyRequest body. */
export function parseHelloVerifyRequest(body: Uint8Array): Parsed<Uint8Array, HelloReason> {
  const r = new Reader(body);
  r.u16(); // server_version: RFC 6347 lets it be 1.0 whatever is negotiated later
  const cookie = r.bytes(r.u8());
  if (!r.ok || r.at !== body.length || cookie.length === 0)
    return reject("dtls-bad-hello", "bad HelloVerifyRequest");
  return accept(cookie);
}

/**
 * What a 1.2 server answers `hello` with, given its SRTP profile preference: the profile, or why
 * the handshake cannot go on (no DTLS 1.2, no common cipher suite, no P-256, no EMS, no SRTP
 * profile in common).
 */
export function chooseForClientHello(
  hello: ClientHello,
  srtpPreference: readonly number[],
):
  | { readonly ok: true; readonly srtpProfile: number }
  | { readonly ok: false; readonly why: string } {
  const offers12 =
    hello.supportedVersions.length === 0
      ? hello.version <= DTLS12
      : hello.supportedVersions.includes(DTLS12);
  // DTLS versions count down: 0xFEFD (1.2) is below 0xFEFF (1.0)
  if (!offers12) return { ok: false, why: "the client does not offer DTLS 1.2" };
  if (!hello.cipherSuites.includes(CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256))
    return { ok: false, why: "no TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" };
  if (hello.supportedGroups.length > 0 && !hello.supportedGroups.includes(GROUP_SECP256R1))
    return { ok: false, why: "no secp256r1" };
  if (!hello.extendedMasterSecret)
    return { ok: false, why: "no extended_master_secret (RFC 7627 is required)" };
  const profile = srtpPreference.find((p) => hello.srtpProfiles.includes(p));
  if (profile === undefined) return { ok: false, why: "no SRTP protection profile in common" };
  return { ok: true, srtpProfile: profile };
}
