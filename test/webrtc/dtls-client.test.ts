/**
 * The DTLS client against OpenSSL, a real peer: `openssl s_server -dtls1_2` with a P-256
 * certificate, `-use_srtp` and a client certificate request completes the handshake with our
 * client for both SRTP profiles, and the keying material it exports equals ours. s_server always
 * answers the first ClientHello with a HelloVerifyRequest (it turns SSL_OP_COOKIE_EXCHANGE on for
 * every DTLS connection), so each run also takes the client through the cookie exchange; the
 * exchange without a cookie is covered against our own server (dtls-handshake.test.ts). The test
 * owns the UDP socket and the clock; only 127.0.0.1, bounded in time, only processes it started.
 */
import { describe, expect, test } from "bun:test";
import { generateCertificate } from "../../src/webrtc/dtls/certificate.ts";
import { DtlsClient } from "../../src/webrtc/dtls/client.ts";
import {
  openssl,
  opensslFiles,
  Printed,
  printedKeyingMaterial,
  printedSrtpProfile,
  pump,
} from "./openssl-peer.ts";

type Profile = "SRTP_AEAD_AES_128_GCM" | "SRTP_AES128_CM_SHA1_80";

const files = opensslFiles();

/** Runs s_server on a free loopback port and a DtlsClient against it. */
async function handshake(profile: Profile, expectFingerprint?: string) {
  const server = files.certificate("s_server");
  const length = profile === "SRTP_AEAD_AES_128_GCM" ? 56 : 60;
  const probe = await Bun.udpSocket({ hostname: "127.0.0.1" });
  const to = { port: probe.port, address: "127.0.0.1" };
  probe.close();
  const proc = Bun.spawn(
    ["openssl", "s_server", "-dtls1_2", "-accept", `127.0.0.1:${to.port}`, "-naccept", "1"].concat(
      ["-cert", server.cert, "-key", server.key, "-use_srtp", profile, "-verify", "1"],
      ["-keymatexport", "EXTRACTOR-dtls_srtp", "-keymatexportlen", String(length)],
      ["-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
    ),
    { stdin: "pipe", stdout: "pipe", stderr: "pipe" },
  );
  const printed = new Printed(proc);
  await printed.until((o) => o.includes("ACCEPT"), 5_000);
  const events: string[] = [];
  const start = performance.now();
  const client = new DtlsClient({
    certificate: generateCertificate(),
    remoteFingerprint: expectFingerprint ?? server.fingerprint,
    srtpProfiles: [0x0007, 0x0001],
  });
  const socket = await Bun.udpSocket({
    hostname: "127.0.0.1",
    socket: {
      data(s, data) {
        client.handleDatagram(performance.now() - start, new Uint8Array(data));
        pump(client, s, to, events);
      },
    },
  });
  client.connect(0);
  pump(client, socket, to, events);
  const ticker = setInterval(() => {
    client.handleTimeout(performance.now() - start);
    pump(client, socket, to, events);
  }, 20);
  const out = await printed.until(
    (o) =>
      events.length > 0 && (printedKeyingMaterial(o) !== undefined || client.state === "failed"),
    10_000,
  );
  clearInterval(ticker);
  proc.kill();
  await proc.exited;
  socket.close();
  return {
    theirs: printedKeyingMaterial(out),
    ours:
      client.state === "connected"
        ? Buffer.from(client.exportKeyingMaterial("EXTRACTOR-dtls_srtp", length)).toString("hex")
        : undefined,
    srtp: printedSrtpProfile(out),
    events,
    helloVerifyRequests: client.helloVerifyRequests,
    rejects: client.rejects.toJSON(),
    out: out.slice(0, 1500),
  };
}

describe.skipIf(openssl === null)("the DTLS client against openssl s_server", () => {
  for (const [profile, id] of [
    ["SRTP_AEAD_AES_128_GCM", 7],
    ["SRTP_AES128_CM_SHA1_80", 1],
  ] as const) {
    test(`${profile}, through s_server's cookie exchange: connected, the same keying material on both sides`, async () => {
      const r = await handshake(profile);
      expect(r.events, JSON.stringify(r)).toEqual([
        JSON.stringify({ type: "connected", srtpProfile: id }),
      ]);
      expect(r.srtp).toBe(profile);
      expect(r.ours).toBeDefined();
      expect(r.ours).toBe(r.theirs);
      expect(r.helloVerifyRequests).toBe(1);
      expect(r.rejects).toEqual({});
    }, 20_000);
  }

  test("a server whose certificate is not the one its SDP names: failed, with the reason, and no keys", async () => {
    const r = await handshake("SRTP_AEAD_AES_128_GCM", generateCertificate().fingerprint);
    expect(r.events).toHaveLength(1);
    expect(r.events[0]).toContain("is not the one its SDP names");
    expect(r.ours).toBeUndefined();
    expect(r.theirs).toBeUndefined();
  }, 20_000);
});
