/**
 * The DTLS server against OpenSSL, a real peer: `openssl s_client -dtls1_2` with a P-256 client
 * certificate and `-use_srtp` completes the handshake with our server, for both SRTP profiles and
 * with and without the cookie exchange, and the keying material it exports equals ours. The test
 * owns the UDP socket and the clock and drives the sans-IO server with them; only 127.0.0.1,
 * bounded in time, and only processes it started are ended.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { generateCertificate } from "../../src/webrtc/dtls/certificate.ts";
import {
  HandshakeReassembler,
  parseHandshakeFragments,
  parseRecords,
} from "../../src/webrtc/dtls/record.ts";
import { DtlsServer } from "../../src/webrtc/dtls/server.ts";
import {
  openssl,
  opensslFiles,
  Printed,
  printedKeyingMaterial,
  printedSrtpProfile,
  pump,
} from "./openssl-peer.ts";

const files = opensslFiles();

/** Runs s_client against a DtlsServer on a loopback port; resolves with both sides' keying material. */
async function handshake(
  profile: "SRTP_AEAD_AES_128_GCM" | "SRTP_AES128_CM_SHA1_80",
  cookie: boolean,
  expectFingerprint?: string,
) {
  const client = files.certificate("s_client");
  const length = profile === "SRTP_AEAD_AES_128_GCM" ? 56 : 60;
  let server: DtlsServer | undefined;
  const events: string[] = [];
  let peer: { port: number; address: string } | undefined;
  const start = performance.now();
  const socket = await Bun.udpSocket({
    hostname: "127.0.0.1",
    socket: {
      data(s, data, port, address) {
        peer = { port, address };
        server ??= new DtlsServer({
          certificate: generated,
          remoteFingerprint: expectFingerprint ?? client.fingerprint,
          srtpProfiles: [0x0007, 0x0001],
          ...(cookie
            ? { cookieSecret: new Uint8Array(32).fill(5), peer: `${address}:${port}` }
            : {}),
        });
        server.handleDatagram(performance.now() - start, new Uint8Array(data));
        pump(server, s, peer, events);
      },
    },
  });
  const generated = generateCertificate();
  const proc = Bun.spawn(
    [
      "openssl",
      "s_client",
      "-dtls1_2",
      "-connect",
      `127.0.0.1:${socket.port}`,
      "-use_srtp",
      profile,
      "-keymatexport",
      "EXTRACTOR-dtls_srtp",
      "-keymatexportlen",
      String(length),
      "-cert",
      client.cert,
      "-key",
      client.key,
      "-cipher",
      "ECDHE-ECDSA-AES128-GCM-SHA256",
    ],
    { stdin: "pipe", stdout: "pipe", stderr: "pipe" },
  );
  const ticker = setInterval(() => {
    const now = performance.now() - start;
    if (server === undefined || peer === undefined) return;
    server.handleTimeout(now);
    pump(server, socket, peer, events);
  }, 20);
  const out = await new Printed(proc).until(
    (o) => printedKeyingMaterial(o) !== undefined && events.some((e) => e.includes("connected")),
    10_000,
  );
  clearInterval(ticker);
  proc.kill();
  await proc.exited;
  socket.close();
  const theirs = printedKeyingMaterial(out);
  const srtp = printedSrtpProfile(out);
  const ours =
    server?.state === "connected"
      ? Buffer.from(server.exportKeyingMaterial("EXTRACTOR-dtls_srtp", length)).toString("hex")
      : undefined;
  return {
    theirs,
    ours,
    srtp,
    events,
    helloVerifyRequests: server?.helloVerifyRequests,
    out: out.slice(0, 2000),
    rejects: server?.rejects.toJSON(),
  };
}

describe("the DTLS server and Chromium's real ClientHello", () => {
  test("the captured two-datagram flight gets a whole ServerHello flight: GCM SRTP, our certificate, ECDHE, CertificateRequest", () => {
    const fixture = JSON.parse(
      readFileSync(join(import.meta.dir, "fixtures", "chromium-client-hello.json"), "utf8"),
    ) as { datagrams: string[] };
    const server = new DtlsServer({
      certificate: generateCertificate(),
      remoteFingerprint: "00".repeat(32),
      srtpProfiles: [0x0007, 0x0001],
    });
    for (const h of fixture.datagrams)
      server.handleDatagram(0, new Uint8Array(Buffer.from(h, "hex")));
    const out: Uint8Array[] = [];
    for (let t = server.pollTransmit(); t !== undefined; t = server.pollTransmit()) out.push(t);
    expect(out.length).toBeGreaterThan(0);
    expect(out.every((d) => d.length <= 1200)).toBe(true);
    const reassembler = new HandshakeReassembler();
    for (const d of out) {
      const records = parseRecords(d);
      if (!records.ok) throw new Error(records.reason);
      for (const r of records.value) {
        const f = parseHandshakeFragments(r.fragment);
        if (!f.ok) throw new Error(f.reason);
        for (const x of f.value) reassembler.add(x);
      }
    }
    const types: number[] = [];
    let serverHello: Uint8Array | undefined;
    for (let m = reassembler.pop(); m !== undefined; m = reassembler.pop()) {
      types.push(m.msgType);
      if (m.msgType === 2) serverHello = m.body;
    }
    expect(types).toEqual([2, 11, 12, 13, 14]);
    expect(Buffer.from(serverHello ?? []).toString("hex")).toContain("000e00050002000700"); // use_srtp GCM
    expect(server.state).toBe("flight4-wait");
    expect(server.pollTimeout()).toBe(1000); // the flight goes again at 1 s without an answer
  });
});

describe.skipIf(openssl === null)("the DTLS server against openssl s_client", () => {
  for (const [profile, id] of [
    ["SRTP_AEAD_AES_128_GCM", 7],
    ["SRTP_AES128_CM_SHA1_80", 1],
  ] as const) {
    for (const cookie of [false, true]) {
      test(`${profile}, ${cookie ? "with" : "without"} the cookie exchange: connected, the same keying material on both sides`, async () => {
        const r = await handshake(profile, cookie);
        expect(r.events, JSON.stringify(r)).toContain(
          JSON.stringify({ type: "connected", srtpProfile: id }),
        );
        expect(r.srtp).toBe(profile);
        expect(r.ours).toBeDefined();
        expect(r.ours).toBe(r.theirs);
        expect(r.helloVerifyRequests).toBe(cookie ? 1 : 0);
      }, 20_000);
    }
  }
  test("a client whose certificate is not the one its SDP names: failed, with the reason, and no keys", async () => {
    const r = await handshake("SRTP_AEAD_AES_128_GCM", false, generateCertificate().fingerprint);
    expect(
      r.events.some((e) => e.includes("failed") && e.includes("is not the one its SDP names")),
    ).toBe(true);
    expect(r.ours).toBeUndefined(); // no keys from a failed handshake
  }, 20_000);
});
