/**
 * The DTLS 1.2 handshake's CPU cost on one core: our DtlsClient and DtlsServer complete whole
 * handshakes against each other in memory (datagrams handed across, no network, no cookie and
 * with the cookie exchange), beside the public-key work alone that any implementation of this
 * handshake must do, on raw node:crypto: two P-256 key pairs, two ECDH secrets, two ECDSA-SHA256
 * signatures (ServerKeyExchange, CertificateVerify), two verifications and two certificate
 * key imports. The ratio says how much the state machine, records, transcript and PRF add.
 *
 *   bun bench/dtls-handshake.ts [--quick]
 */
import { createECDH, sign, verify, X509Certificate } from "node:crypto";
import { loadavg } from "node:os";
import { generateCertificate } from "../src/webrtc/dtls/certificate.ts";
import { DtlsClient } from "../src/webrtc/dtls/client.ts";
import type { DtlsEndpoint } from "../src/webrtc/dtls/endpoint.ts";
import { DtlsServer } from "../src/webrtc/dtls/server.ts";
import { finish, fmt, interleavedMedians, quick, type Result } from "./lib/report.ts";

const clientCert = generateCertificate();
const serverCert = generateCertificate();
const cookieSecret = new Uint8Array(32).fill(1);
let sink = 0;

/** Moves every datagram of `from` into `to` at `now`; returns how many. */
function carry(from: DtlsEndpoint<string>, to: DtlsEndpoint<string>, now: number): number {
  let n = 0;
  for (let d = from.pollTransmit(); d !== undefined; d = from.pollTransmit()) {
    to.handleDatagram(now, d);
    n++;
  }
  return n;
}

/** One whole handshake in memory; throws if it does not complete. */
function handshake(cookie: boolean): void {
  const client = new DtlsClient({
    certificate: clientCert,
    remoteFingerprint: serverCert.fingerprint,
    srtpProfiles: [7, 1],
  });
  const server = new DtlsServer({
    certificate: serverCert,
    remoteFingerprint: clientCert.fingerprint,
    srtpProfiles: [7, 1],
    ...(cookie ? { cookieSecret, peer: "127.0.0.1:5000" } : {}),
  });
  client.connect(0);
  for (let round = 0; round < 8; round++)
    if (carry(client, server, round) + carry(server, client, round) === 0) break;
  if (client.state !== "connected" || server.state !== "connected")
    throw new Error(`handshake ended ${client.state}/${server.state}`);
  sink += client.exportKeyingMaterial("EXTRACTOR-dtls_srtp", 56)[0] as number;
}

/** The public-key operations of one handshake, nothing else. */
function cryptoFloor(): void {
  const a = createECDH("prime256v1");
  const b = createECDH("prime256v1");
  const pa = a.generateKeys();
  const pb = b.generateKeys();
  sink += a.computeSecret(pb)[0] as number;
  sink += b.computeSecret(pa)[0] as number;
  const data = new Uint8Array(200).fill(sink & 0xff);
  const s1 = sign("sha256", data, serverCert.privateKey);
  const s2 = sign("sha256", data, clientCert.privateKey);
  sink += verify("sha256", data, new X509Certificate(serverCert.der).publicKey, s1) ? 1 : 0;
  sink += verify("sha256", data, new X509Certificate(clientCert.der).publicKey, s2) ? 1 : 0;
}

const runs = quick ? 3 : 7;
const ops = quick ? 100 : 400;
const names = ["ours, no cookie", "ours, cookie exchange", "public-key work alone"];
const timings = interleavedMedians(runs, ops, [
  (n) => {
    for (let i = 0; i < n; i++) handshake(false);
  },
  (n) => {
    for (let i = 0; i < n; i++) handshake(true);
  },
  (n) => {
    for (let i = 0; i < n; i++) cryptoFloor();
  },
]);

console.log(
  `dtls-handshake bench: client + server in one thread, median of ${runs} interleaved runs x ${ops} handshakes`,
);
console.log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
console.log(
  "\nimplementation                 handshakes/s    cpu us/handshake   vs public-key work",
);
const floor = timings[2];
const results: Result[] = [];
const ratios: Record<string, number> = {};
timings.forEach((t, i) => {
  const name = names[i] as string;
  const cpuUs = t.cpuNsPerOp / 1000;
  const vs = floor === undefined ? 0 : t.cpuNsPerOp / floor.cpuNsPerOp;
  console.log(
    `${name.padEnd(30)} ${fmt(t.opsPerSec, 0).padStart(12)} ${fmt(cpuUs, 0).padStart(18)} ${fmt(vs, 2).padStart(20)}x`,
  );
  results.push(
    { name: `${name} handshakes/s`, value: t.opsPerSec, unit: "handshakes/s" },
    { name: `${name} cpu`, value: cpuUs, unit: "cpu us/handshake" },
  );
  if (i < 2) ratios[`${name} cpu / public-key work cpu`] = vs;
});
console.log(
  `\none side's share: about half of "ours" (each handshake here runs both the client and the server)`,
);
if (sink === -1) console.log("unreachable");
finish("dtls-handshake", results, ratios);
