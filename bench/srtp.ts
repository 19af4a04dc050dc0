/**
 * SRTP protect and unprotect of RTP packets with a 1,100-byte payload, one core, for both
 * profiles: ours (SrtpProtector / SrtpUnprotector writing into a reused output buffer) beside
 * werift-rtp's SrtpSession and raw node:crypto doing only the cipher work per packet:
 *   - GCM: createCipheriv / createDecipheriv("aes-128-gcm") + AAD + tag, no header parsing,
 *     no index or replay state, nonces precomputed;
 *   - AES-CM: createCipheriv("aes-128-ctr") + createHmac("sha1") over header, payload and ROC.
 * Raw runs twice, with the key as bytes and as a KeyObject; protect is judged against the
 * faster. Unprotect feeds laps of 4,096 distinct packets, each lap to a new receiver (a receiver
 * refuses replays; werift's would also count the repeated sequence numbers as a rollover).
 *
 *   bun bench/srtp.ts [--quick]
 *
 * Targets: unprotect >= 4x werift-rtp; protect >= 0.8x raw createCipheriv throughput.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  type KeyObject,
} from "node:crypto";
import { loadavg } from "node:os";
import { RtpHeader, SrtpSession, type SrtpProfile as WeriftProfile } from "werift-rtp";
import {
  deriveSrtpSessionKeys,
  SRTP_AEAD_AES_128_GCM,
  SRTP_AES128_CM_HMAC_SHA1_80,
  type SrtpProfile,
  SrtpProtector,
  type SrtpSessionKeys,
  SrtpUnprotector,
  splitSrtpKeyingMaterial,
  srtpKeyingMaterialLength,
} from "../src/webrtc/srtp.ts";
import { finish, fmt, quick, type Result, type Timing, time } from "./lib/report.ts";

const PAYLOAD = 1100;
const LAP = 4096;
const SSRC = 0x1234abcd;
const ops = quick ? 20_000 : 100_000;
const runs = quick ? 3 : 5;

type Body = (ops: number) => void;

function rtpPacket(seq: number): Uint8Array {
  const p = new Uint8Array(12 + PAYLOAD);
  const v = new DataView(p.buffer);
  p[0] = 0x80;
  p[1] = 111;
  v.setUint16(2, seq);
  v.setUint32(4, 0x01020304);
  v.setUint32(8, SSRC);
  for (let i = 12; i < p.length; i++) p[i] = i & 255;
  return p;
}

/** The 12-byte GCM nonce of RFC 7714 §8.1 at ROC 0. */
function gcmNonce(salt: Uint8Array, seq: number): Uint8Array {
  const n = new Uint8Array(12);
  const v = new DataView(n.buffer);
  v.setUint32(2, SSRC);
  v.setUint16(10, seq);
  for (let i = 0; i < 12; i++) n[i] = (n[i] as number) ^ (salt[i] as number);
  return n;
}

/** The 16-byte AES-CM IV of RFC 3711 §4.1.1 at ROC 0. */
function cmIv(salt: Uint8Array, seq: number): Uint8Array {
  const iv = new Uint8Array(16);
  const v = new DataView(iv.buffer);
  v.setUint32(4, SSRC);
  v.setUint16(12, seq);
  for (let i = 0; i < 14; i++) iv[i] = (iv[i] as number) ^ (salt[i] as number);
  return iv;
}

let sink = 0;

/**
 * Like report.ts's interleavedMedians (a warm-up round, then every body once per round, median by
 * wall time), but the order rotates each round (A B C D, B C D A, ...): every body allocates per
 * packet, and in a fixed order one body's garbage would always be collected on the clock of the
 * same successor.
 */
function medians(bodies: readonly Body[]): Timing[] {
  for (const body of bodies) time(Math.floor(ops / 2), body);
  const all: Timing[][] = bodies.map(() => []);
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < bodies.length; i++) {
      const b = (r + i) % bodies.length;
      all[b]?.push(time(ops, bodies[b] as Body));
    }
  }
  return all.map((timings) => {
    timings.sort((a, b) => a.wallNsPerOp - b.wallNsPerOp);
    return timings[Math.floor(timings.length / 2)] as Timing;
  });
}

/** Protect bodies: ours, werift, raw (key bytes), raw (KeyObject). */
function protectBodies(profile: SrtpProfile, keys: SrtpSessionKeys, werift: SrtpSession): Body[] {
  const gcm = profile === SRTP_AEAD_AES_128_GCM;
  const ivs = Array.from({ length: LAP }, (_, s) =>
    gcm ? gcmNonce(keys.rtpSalt, s) : cmIv(keys.rtpSalt, s),
  );
  const roc = new Uint8Array(4);
  const raw = (key: Uint8Array | KeyObject, auth: Uint8Array | KeyObject): Body => {
    const packet = rtpPacket(0);
    const header = packet.subarray(0, 12);
    const payload = packet.subarray(12);
    return gcm
      ? (n) => {
          for (let k = 0; k < n; k++) {
            const c = createCipheriv("aes-128-gcm", key, ivs[k % LAP] as Uint8Array);
            c.setAAD(header);
            sink += c.update(payload).length;
            c.final();
            sink += c.getAuthTag().length;
          }
        }
      : (n) => {
          for (let k = 0; k < n; k++) {
            const c = createCipheriv("aes-128-ctr", key, ivs[k % LAP] as Uint8Array);
            const body = c.update(payload);
            sink += createHmac("sha1", auth)
              .update(header)
              .update(body)
              .update(roc)
              .digest().length;
          }
        };
  };
  const protector = new SrtpProtector(profile, keys);
  const packet = rtpPacket(0);
  const out = new Uint8Array(packet.length + protector.rtpOverhead);
  const header = RtpHeader.deSerialize(Buffer.from(packet));
  const payload = Buffer.from(packet.subarray(12));
  return [
    (n) => {
      for (let k = 0; k < n; k++) {
        packet[2] = k >>> 8;
        packet[3] = k;
        sink += protector.protectRtp(packet, out).length;
      }
    },
    (n) => {
      for (let k = 0; k < n; k++) {
        header.sequenceNumber = k & 0xffff;
        sink += werift.encrypt(payload, header).length;
      }
    },
    raw(keys.rtpKey, keys.rtpAuthKey),
    raw(createSecretKey(keys.rtpKey), createSecretKey(keys.rtpAuthKey)),
  ];
}

/** Unprotect bodies: ours, werift, raw (key bytes), raw (KeyObject); `wire` is one lap. */
function unprotectBodies(
  profile: SrtpProfile,
  keys: SrtpSessionKeys,
  newWerift: () => SrtpSession,
  wire: readonly Uint8Array[],
): Body[] {
  const gcm = profile === SRTP_AEAD_AES_128_GCM;
  const tag = gcm ? 16 : 10;
  const ivs = wire.map((_, s) => (gcm ? gcmNonce(keys.rtpSalt, s) : cmIv(keys.rtpSalt, s)));
  const buffers = wire.map((p) => Buffer.from(p));
  const roc = new Uint8Array(4);
  const raw = (key: Uint8Array | KeyObject, auth: Uint8Array | KeyObject): Body =>
    gcm
      ? (n) => {
          for (let k = 0; k < n; k++) {
            const p = wire[k % LAP] as Uint8Array;
            const end = p.length - tag;
            const d = createDecipheriv("aes-128-gcm", key, ivs[k % LAP] as Uint8Array);
            d.setAAD(p.subarray(0, 12));
            d.setAuthTag(p.subarray(end));
            sink += d.update(p.subarray(12, end)).length;
            d.final();
          }
        }
      : (n) => {
          for (let k = 0; k < n; k++) {
            const p = wire[k % LAP] as Uint8Array;
            const end = p.length - tag;
            const mac = createHmac("sha1", auth).update(p.subarray(0, end)).update(roc).digest();
            let diff = 0;
            for (let i = 0; i < tag; i++) diff |= (mac[i] as number) ^ (p[end + i] as number);
            if (diff !== 0) throw new Error("raw: tag mismatch");
            const c = createCipheriv("aes-128-ctr", key, ivs[k % LAP] as Uint8Array);
            sink += c.update(p.subarray(12, end)).length;
          }
        };
  const out = new Uint8Array(12 + PAYLOAD);
  return [
    (n) => {
      let u = new SrtpUnprotector(profile, keys);
      for (let k = 0; k < n; k++) {
        if (k % LAP === 0) u = new SrtpUnprotector(profile, keys);
        const r = u.unprotectRtp(wire[k % LAP] as Uint8Array, out);
        if (!r.ok) throw new Error(`ours: ${r.reason}`);
        sink += r.value.length;
      }
    },
    (n) => {
      let w = newWerift();
      for (let k = 0; k < n; k++) {
        if (k % LAP === 0) w = newWerift();
        sink += w.decrypt(buffers[k % LAP] as Buffer).length;
      }
    },
    raw(keys.rtpKey, keys.rtpAuthKey),
    raw(createSecretKey(keys.rtpKey), createSecretKey(keys.rtpAuthKey)),
  ];
}

const NAMES = ["ours", "werift-rtp", "raw node:crypto (key bytes)", "raw node:crypto (KeyObject)"];
const results: Result[] = [];
const ratios: Record<string, number> = {};
const verdicts: string[] = [];

console.log(
  `srtp bench: RTP with a ${PAYLOAD}-byte payload, one core, median of ${runs} interleaved runs x ${ops} packets`,
);
console.log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
for (const profile of [SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_HMAC_SHA1_80] as const) {
  const label = profile === SRTP_AEAD_AES_128_GCM ? "GCM" : "AES-CM";
  const material = new Uint8Array(srtpKeyingMaterialLength(profile)).map((_, i) => i * 37 + 11);
  const m = splitSrtpKeyingMaterial(profile, material, "client");
  const keys = deriveSrtpSessionKeys(profile, m.localKey, m.localSalt);
  const weriftConfig = (local: boolean) => ({
    keys: {
      localMasterKey: Buffer.from(local ? m.localKey : m.remoteKey),
      localMasterSalt: Buffer.from(local ? m.localSalt : m.remoteSalt),
      remoteMasterKey: Buffer.from(local ? m.remoteKey : m.localKey),
      remoteMasterSalt: Buffer.from(local ? m.remoteSalt : m.localSalt),
    },
    profile: profile as WeriftProfile,
  });
  const sender = new SrtpProtector(profile, keys);
  const wire = Array.from({ length: LAP }, (_, s) => sender.protectRtp(rtpPacket(s)));

  console.log(`\n${label}`);
  console.log(
    "op          implementation                   packets/s      ns/op   cpu ns/op   ours / it",
  );
  const sections: [string, Body[]][] = [
    ["protect", protectBodies(profile, keys, new SrtpSession(weriftConfig(true)))],
    ["unprotect", unprotectBodies(profile, keys, () => new SrtpSession(weriftConfig(false)), wire)],
  ];
  for (const [op, bodies] of sections) {
    const timings = medians(bodies);
    const ours = timings[0] as Timing;
    timings.forEach((t, i) => {
      const name = NAMES[i] as string;
      console.log(
        `${op.padEnd(11)} ${name.padEnd(30)} ${fmt(t.opsPerSec, 0).padStart(11)} ${fmt(t.wallNsPerOp, 0).padStart(10)} ${fmt(t.cpuNsPerOp, 0).padStart(11)} ${i === 0 ? "" : fmt(ours.opsPerSec / t.opsPerSec, 2).padStart(11)}`,
      );
      results.push(
        { name: `${label} ${op} ${name}`, value: t.opsPerSec, unit: "packets/s" },
        { name: `${label} ${op} ${name} cpu`, value: t.cpuNsPerOp, unit: "cpu ns/op" },
      );
      if (i > 0) ratios[`${label} ${op} ours / ${name}`] = ours.opsPerSec / t.opsPerSec;
    });
    if (op === "unprotect") {
      const r = ours.opsPerSec / (timings[1] as Timing).opsPerSec;
      verdicts.push(
        `${label} unprotect: ${fmt(r, 2)}x werift-rtp (target >= 4x): ${r >= 4 ? "met" : "NOT met"}`,
      );
    } else {
      const rawBest = Math.max((timings[2] as Timing).opsPerSec, (timings[3] as Timing).opsPerSec);
      const r = ours.opsPerSec / rawBest;
      ratios[`${label} protect ours / best raw`] = r;
      verdicts.push(
        `${label} protect: ${fmt(r, 2)}x the faster raw createCipheriv (target >= 0.8x): ${r >= 0.8 ? "met" : "NOT met"}`,
      );
    }
  }
}
console.log(
  `\nload average at end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
for (const v of verdicts) console.log(v);
if (sink === -1) console.log("unreachable");
finish("srtp", results, ratios);
