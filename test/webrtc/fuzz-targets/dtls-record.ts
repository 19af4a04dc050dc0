/**
 * Fuzz targets: DTLS record framing, handshake reassembly and the ClientHello, from Chromium's
 * flight; the server fed a mutated ClientHello flight; the client fed a mutated server flight.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { generateCertificate } from "../../../src/webrtc/dtls/certificate.ts";
import { DtlsClient } from "../../../src/webrtc/dtls/client.ts";
import { chooseForClientHello, parseClientHello } from "../../../src/webrtc/dtls/hello.ts";
import {
  HandshakeReassembler,
  parseHandshakeFragments,
  parseRecords,
} from "../../../src/webrtc/dtls/record.ts";
import { DtlsServer } from "../../../src/webrtc/dtls/server.ts";
import type { FuzzTarget } from "../fuzz.ts";

const flight = (
  JSON.parse(
    readFileSync(join(import.meta.dir, "..", "fixtures", "chromium-client-hello.json"), "utf8"),
  ) as {
    datagrams: string[];
  }
).datagrams.map((h) => new Uint8Array(Buffer.from(h, "hex")));

const certificate = generateCertificate();
const clientCertificate = generateCertificate();
const clientRandom = () => new Uint8Array(32).fill(3);

/**
 * A client that has sent its ClientHello (with a fixed random, which the server's flight signs),
 * and that ClientHello.
 */
function newClient(): [DtlsClient, Uint8Array] {
  const client = new DtlsClient({
    certificate: clientCertificate,
    remoteFingerprint: certificate.fingerprint,
    srtpProfiles: [7, 1],
    random: clientRandom,
  });
  client.connect(0);
  return [client, client.pollTransmit() as Uint8Array];
}

/** Our server's answer to that ClientHello: ServerHello through ServerHelloDone. */
const serverFlight = (() => {
  const [client, hello] = newClient();
  const server = new DtlsServer({
    certificate,
    remoteFingerprint: clientCertificate.fingerprint,
    srtpProfiles: [7, 1],
  });
  server.handleDatagram(0, hello);
  const out: Uint8Array[] = [];
  for (let d = server.pollTransmit(); d !== undefined; d = server.pollTransmit()) out.push(d);
  for (const d of out) client.handleDatagram(0, d);
  if (client.state !== "finished-wait") throw new Error(`fuzz setup: client ${client.state}`);
  return out;
})();

/** The first refusal's reason, "dtls-handshake-failed", or undefined when all was taken. */
function outcome(endpoint: DtlsClient | DtlsServer): string | undefined {
  while (endpoint.pollTransmit() !== undefined) {
    // drain
  }
  if (endpoint.state === "failed") return "dtls-handshake-failed";
  return endpoint.rejects.count() > 0 ? Object.keys(endpoint.rejects.toJSON())[0] : undefined;
}

/** The DTLS framing and server targets. */
export const targets: readonly FuzzTarget[] = [
  {
    name: "dtls-records",
    samples: flight,
    feed(input) {
      const records = parseRecords(input);
      if (!records.ok) return records.reason;
      const r = new HandshakeReassembler();
      for (const rec of records.value) {
        if (rec.type !== 22) continue;
        const fragments = parseHandshakeFragments(rec.fragment);
        if (!fragments.ok) return fragments.reason;
        for (const f of fragments.value) {
          const refused = r.add(f);
          if (refused !== undefined) return refused;
        }
      }
      for (let m = r.pop(); m !== undefined; m = r.pop()) {
        if (m.msgType !== 1) continue;
        const hello = parseClientHello(m.body);
        if (!hello.ok) return hello.reason;
        chooseForClientHello(hello.value, [7, 1]);
      }
      return undefined;
    },
  },
  {
    // a fresh server fed the flight's first datagram, then a mutated one: it answers, refuses or
    // fails; never throws
    name: "dtls-server",
    samples: flight,
    feed(input) {
      const server = new DtlsServer({
        certificate,
        remoteFingerprint: "00".repeat(32),
        srtpProfiles: [7, 1],
      });
      server.handleDatagram(0, flight[0] as Uint8Array);
      server.handleDatagram(0, input);
      return outcome(server);
    },
  },
  {
    // a client that sent its ClientHello, fed a mutated datagram and then the genuine flight: it
    // goes on, refuses or fails; never throws
    name: "dtls-client",
    samples: serverFlight,
    feed(input) {
      const [client] = newClient();
      client.handleDatagram(0, input);
      for (const d of serverFlight) client.handleDatagram(0, d);
      return outcome(client);
    },
  },
];
