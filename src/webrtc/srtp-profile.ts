/**
 * The two SRTP protection profiles this stack speaks (RFC 5764 §4.1.2, RFC 7714 §14.2), their
 * key, salt and tag lengths, and the split of DTLS-SRTP exported keying material into the local
 * and remote master keys (RFC 5764 §4.2). Pure data and functions.
 */

/** DTLS-SRTP profile id of SRTP_AES128_CM_HMAC_SHA1_80: AES-128 counter mode, 80-bit HMAC-SHA1. */
export const SRTP_AES128_CM_HMAC_SHA1_80 = 0x0001;

/** DTLS-SRTP profile id of SRTP_AEAD_AES_128_GCM: AES-128-GCM with a 16-byte tag (RFC 7714). */
export const SRTP_AEAD_AES_128_GCM = 0x0007;

/** A protection profile id this stack implements. */
export type SrtpProfile = typeof SRTP_AES128_CM_HMAC_SHA1_80 | typeof SRTP_AEAD_AES_128_GCM;

/** What a profile needs: master key and salt lengths and the tag length, all in bytes. */
export interface SrtpProfileInfo {
  readonly id: SrtpProfile;
  /** The RFC name, e.g. "SRTP_AEAD_AES_128_GCM". */
  readonly name: string;
  /** Master (and session) key length. */
  readonly keyLength: number;
  /** Master (and session) salt length: 14 for AES-CM, 12 for GCM. */
  readonly saltLength: number;
  /** Authentication tag appended to every SRTP and SRTCP packet. */
  readonly tagLength: number;
  /** Session authentication key length (HMAC-SHA1 key; 0 for an AEAD profile). */
  readonly authKeyLength: number;
}

/** The parameters of each profile, by id. */
export const SRTP_PROFILES: { readonly [P in SrtpProfile]: SrtpProfileInfo } = {
  [SRTP_AES128_CM_HMAC_SHA1_80]: {
    id: SRTP_AES128_CM_HMAC_SHA1_80,
    name: "SRTP_AES128_CM_HMAC_SHA1_80",
    keyLength: 16,
    saltLength: 14,
    tagLength: 10,
    authKeyLength: 20,
  },
  [SRTP_AEAD_AES_128_GCM]: {
    id: SRTP_AEAD_AES_128_GCM,
    name: "SRTP_AEAD_AES_128_GCM",
    keyLength: 16,
    saltLength: 12,
    tagLength: 16,
    authKeyLength: 0,
  },
};

/** The profiles in order of preference for negotiation: GCM first. */
export const SRTP_PROFILE_PREFERENCE: readonly SrtpProfile[] = [
  SRTP_AEAD_AES_128_GCM,
  SRTP_AES128_CM_HMAC_SHA1_80,
];

/** True when `id` (a DTLS use_srtp profile id) is one this stack implements. */
export function isSrtpProfile(id: number): id is SrtpProfile {
  return id === SRTP_AEAD_AES_128_GCM || id === SRTP_AES128_CM_HMAC_SHA1_80;
}

/** Bytes of keying material to export from DTLS for `profile`: 2 * (key + salt), 56 or 60. */
export function srtpKeyingMaterialLength(profile: SrtpProfile): number {
  const p = SRTP_PROFILES[profile];
  return 2 * (p.keyLength + p.saltLength);
}

/** Master keys and salts for both directions of one DTLS-SRTP association. */
export interface SrtpMasterKeys {
  /** Protects what this endpoint sends. */
  readonly localKey: Uint8Array;
  readonly localSalt: Uint8Array;
  /** Unprotects what the peer sends. */
  readonly remoteKey: Uint8Array;
  readonly remoteSalt: Uint8Array;
}

/**
 * Splits DTLS-SRTP exported keying material (label "EXTRACTOR-dtls_srtp", RFC 5764 §4.2: client
 * key, server key, client salt, server salt) into this endpoint's local and remote master keys
 * for its DTLS `role`. The returned arrays are copies. Throws a RangeError when `material` is not
 * exactly `srtpKeyingMaterialLength(profile)` bytes (a caller's mistake, not wire input).
 */
export function splitSrtpKeyingMaterial(
  profile: SrtpProfile,
  material: Uint8Array,
  role: "client" | "server",
): SrtpMasterKeys {
  const { keyLength: k, saltLength: s } = SRTP_PROFILES[profile];
  if (material.length !== 2 * (k + s)) {
    throw new RangeError(
      `SRTP keying material must be ${2 * (k + s)} bytes, got ${material.length}`,
    );
  }
  const clientKey = material.slice(0, k);
  const serverKey = material.slice(k, 2 * k);
  const clientSalt = material.slice(2 * k, 2 * k + s);
  const serverSalt = material.slice(2 * k + s, 2 * (k + s));
  return role === "client"
    ? { localKey: clientKey, localSalt: clientSalt, remoteKey: serverKey, remoteSalt: serverSalt }
    : { localKey: serverKey, localSalt: serverSalt, remoteKey: clientKey, remoteSalt: clientSalt };
}
