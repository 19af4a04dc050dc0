/**
 * Helpers for the DTLS tests whose real peer is Debian's `openssl` (s_client, s_server): its
 * presence (required with CI=true), ECDSA P-256 certificates it made, what it printed, and a
 * pump that carries a sans-IO DTLS endpoint's datagrams and events over a Bun UDP socket.
 */
import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { udp } from "bun";
import { fingerprintOf } from "../../src/webrtc/dtls/certificate.ts";
import type { DtlsEndpoint } from "../../src/webrtc/dtls/endpoint.ts";

/** The openssl binary, or null (which fails the test module with CI=true). */
export const openssl = Bun.which("openssl");
if (openssl === null && process.env.CI === "true")
  throw new Error("CI=true but openssl is missing: apt-get install openssl");

/**
 * A directory of OpenSSL-made files for the calling test file (removed after its tests), and a
 * maker of ECDSA P-256 self-signed certificates in it: PEM files and the fingerprint.
 */
export function opensslFiles(): {
  certificate(name: string): { cert: string; key: string; fingerprint: string };
} {
  const dir = mkdtempSync(join(tmpdir(), "sansio-dtls-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]) => {
    const r = Bun.spawnSync(["openssl", ...args], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
    return r.stdout;
  };
  return {
    certificate(name) {
      const key = join(dir, `${name}.key`);
      const cert = join(dir, `${name}.pem`);
      run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key);
      run("req", "-new", "-x509", "-key", key, "-out", cert, "-days", "2", "-subj", `/CN=${name}`);
      const der = run("x509", "-in", cert, "-outform", "DER");
      return { cert, key, fingerprint: fingerprintOf(new Uint8Array(der)) };
    },
  };
}

/** The keying material s_client or s_server printed (lower-case hex), if any. */
export function printedKeyingMaterial(out: string): string | undefined {
  return /Keying material: ([0-9A-F]+)/.exec(out)?.[1]?.toLowerCase();
}

/** The SRTP profile s_client or s_server printed, if any. */
export function printedSrtpProfile(out: string): string | undefined {
  return /SRTP Extension negotiated, profile=(\S+)/.exec(out)?.[1];
}

/** Sends what `endpoint` has to send to `to` and records its events as JSON lines. */
export function pump(
  endpoint: DtlsEndpoint<string>,
  socket: udp.Socket<"buffer">,
  to: { port: number; address: string },
  events: string[],
): void {
  for (let t = endpoint.pollTransmit(); t !== undefined; t = endpoint.pollTransmit())
    socket.send(t, to.port, to.address);
  for (let e = endpoint.pollEvent(); e !== undefined; e = endpoint.pollEvent())
    events.push(
      JSON.stringify(e.type === "connected" ? { type: e.type, srtpProfile: e.srtpProfile } : e),
    );
}

/** What a process printed on stdout so far, read in the background from the start. */
export class Printed {
  text = "";
  #ended = false;

  constructor(proc: { stdout: ReadableStream<Uint8Array> }) {
    void (async () => {
      for await (const chunk of proc.stdout) this.text += new TextDecoder().decode(chunk);
      this.#ended = true;
    })();
  }

  /** Waits until `done(text)` holds (checked every 10 ms), stdout ends, or `ms` pass. */
  async until(done: (text: string) => boolean, ms: number): Promise<string> {
    const deadline = performance.now() + ms;
    while (!done(this.text) && !this.#ended && performance.now() < deadline) await Bun.sleep(10);
    return this.text;
  }
}
