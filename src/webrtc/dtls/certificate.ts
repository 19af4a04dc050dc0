/**
 * The DTLS certificate of a WebRTC endpoint: a self-signed X.509 v3 certificate on an ECDSA P-256
 * key, made with the DER writer in der.ts and signed by node:crypto, and its SHA-256 fingerprint
 * as SDP's `a=fingerprint:sha-256` carries it. WebRTC authenticates a peer by that fingerprint,
 * not by a chain, so the certificate holds only what X.509 requires. No clock is read: the
 * validity is fixed unless given.
 */
import {
  createHash,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  X509Certificate,
} from "node:crypto";
import { signEcdsaSha256 } from "./crypto.ts";
import {
  bitString,
  explicit,
  oid,
  sequence,
  set,
  smallInteger,
  time,
  unsignedInteger,
  utf8String,
} from "./der.ts";

/** A certificate with its private key and fingerprint. */
export interface DtlsCertificate {
  /** The certificate, DER. */
  readonly der: Uint8Array;
  /** Its ECDSA P-256 private key. */
  readonly privateKey: KeyObject;
  /** SHA-256 of `der` as uppercase hex pairs joined by ':' (SDP's `a=fingerprint:sha-256`). */
  readonly fingerprint: string;
}

/** Options of `generateCertificate`. */
export interface CertificateOptions {
  /** The subject and issuer common name. Default "bun-sansio". */
  readonly commonName?: string;
  /** Start of validity. Default 2020-01-01T00:00:00Z. */
  readonly notBefore?: Date;
  /** End of validity. Default 2049-12-31T23:59:59Z. */
  readonly notAfter?: Date;
  /** Random bytes for the serial number. Default node:crypto's randomBytes. */
  readonly random?: (n: number) => Uint8Array;
}

const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";
const COMMON_NAME = "2.5.4.3";

/** A new P-256 key and a self-signed certificate for it. */
export function generateCertificate(options: CertificateOptions = {}): DtlsCertificate {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const serial = (options.random ?? randomBytes)(16).slice();
  serial[0] = ((serial[0] as number) & 0x7f) | 0x01; // positive, 16 bytes
  const name = sequence(
    set(sequence(oid(COMMON_NAME), utf8String(options.commonName ?? "bun-sansio"))),
  );
  const algorithm = sequence(oid(ECDSA_WITH_SHA256));
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(serial),
    algorithm,
    name,
    sequence(
      time(options.notBefore ?? new Date(Date.UTC(2020, 0, 1))),
      time(options.notAfter ?? new Date(Date.UTC(2049, 11, 31, 23, 59, 59))),
    ),
    name,
    new Uint8Array(publicKey.export({ type: "spki", format: "der" })),
  );
  const der = sequence(tbs, algorithm, bitString(signEcdsaSha256(privateKey, tbs)));
  return { der, privateKey, fingerprint: fingerprintOf(der) };
}

/** The SHA-256 fingerprint of DER `der`: uppercase hex pairs joined by ':'. */
export function fingerprintOf(der: Uint8Array): string {
  const hex = createHash("sha256").update(der).digest("hex").toUpperCase();
  return hex.replace(/(..)(?!$)/g, "$1:");
}

/** Whether `a` and `b` name the same SHA-256 fingerprint (case and separators aside). */
export function sameFingerprint(a: string, b: string): boolean {
  const norm = (s: string) => s.replace(/[^0-9a-f]/gi, "").toUpperCase();
  return norm(a) === norm(b) && norm(a).length === 64;
}

/** The ECDSA P-256 public key of certificate `der`; undefined if it is not one or not parseable. */
export function publicKeyOf(der: Uint8Array): KeyObject | undefined {
  try {
    const key = new X509Certificate(der).publicKey;
    const details = key.asymmetricKeyDetails;
    return key.asymmetricKeyType === "ec" && details?.namedCurve === "prime256v1" ? key : undefined;
  } catch {
    return undefined;
  }
}
