/**
 * SRTP key derivation (RFC 3711 §4.3) with the AES-CM PRF and a key derivation rate of 0: each
 * session key, salt and authentication key is the AES-128 counter-mode keystream under the master
 * key, starting from (label at byte 7 XOR master salt) * 2^16. RFC 7714 (errata 4938) feeds its
 * 96-bit master salt to the same function multiplied by 2^16, that is padded with two zero bytes.
 */
import { createCipheriv } from "node:crypto";
import { SRTP_PROFILES, type SrtpProfile } from "./srtp-profile.ts";

/** The key derivation labels of RFC 3711 §4.3.1 and §4.3.2. */
export const SrtpKdfLabel = {
  rtpEncryption: 0x00,
  rtpAuthentication: 0x01,
  rtpSalt: 0x02,
  rtcpEncryption: 0x03,
  rtcpAuthentication: 0x04,
  rtcpSalt: 0x05,
} as const;

/**
 * `length` bytes of the AES-CM PRF for `label` (RFC 3711 §4.3.3) under a 16-byte `masterKey` and
 * a master salt of at most 14 bytes (a 12-byte GCM salt is padded on the right with zeros).
 * Throws a RangeError on a key or salt of another length (a caller's mistake).
 */
export function srtpKdf(
  masterKey: Uint8Array,
  masterSalt: Uint8Array,
  label: number,
  length: number,
): Uint8Array {
  if (masterKey.length !== 16) throw new RangeError("SRTP master key must be 16 bytes");
  if (masterSalt.length !== 14 && masterSalt.length !== 12) {
    throw new RangeError("SRTP master salt must be 14 or 12 bytes");
  }
  const iv = new Uint8Array(16);
  iv.set(masterSalt);
  iv[7] = (iv[7] as number) ^ label;
  const cipher = createCipheriv("aes-128-ctr", masterKey, iv);
  return new Uint8Array(cipher.update(new Uint8Array(length)));
}

/** The session keys of one direction; the authentication keys are empty for an AEAD profile. */
export interface SrtpSessionKeys {
  readonly rtpKey: Uint8Array;
  readonly rtpSalt: Uint8Array;
  readonly rtpAuthKey: Uint8Array;
  readonly rtcpKey: Uint8Array;
  readonly rtcpSalt: Uint8Array;
  readonly rtcpAuthKey: Uint8Array;
}

/**
 * Derives the SRTP and SRTCP session keys, salts and authentication keys for `profile` from one
 * master key and salt (of the profile's lengths; a RangeError otherwise).
 */
export function deriveSrtpSessionKeys(
  profile: SrtpProfile,
  masterKey: Uint8Array,
  masterSalt: Uint8Array,
): SrtpSessionKeys {
  const p = SRTP_PROFILES[profile];
  if (masterKey.length !== p.keyLength || masterSalt.length !== p.saltLength) {
    throw new RangeError(
      `${p.name} needs a ${p.keyLength}-byte master key and ${p.saltLength}-byte salt`,
    );
  }
  const derive = (label: number, length: number) => srtpKdf(masterKey, masterSalt, label, length);
  return {
    rtpKey: derive(SrtpKdfLabel.rtpEncryption, p.keyLength),
    rtpSalt: derive(SrtpKdfLabel.rtpSalt, p.saltLength),
    rtpAuthKey: derive(SrtpKdfLabel.rtpAuthentication, p.authKeyLength),
    rtcpKey: derive(SrtpKdfLabel.rtcpEncryption, p.keyLength),
    rtcpSalt: derive(SrtpKdfLabel.rtcpSalt, p.saltLength),
    rtcpAuthKey: derive(SrtpKdfLabel.rtcpAuthentication, p.authKeyLength),
  };
}
