/** Fuzz target: DTLS record framing, handshake reassembly and the ClientHello, from Chromium's flight. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { generateCertificate } from "../../../src/webrtc/dtls/certificate.ts";
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
      while (server.pollTransmit() !== undefined) {
        // drain
      }
      if (server.state === "failed") return "dtls-handshake-failed";
      const refused = server.rejects.count();
      return refused > 0 ? Object.keys(server.rejects.toJSON())[0] : undefined;
    },
  },
];
