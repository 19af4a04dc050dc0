/**
 * Our DTLS client against our DTLS server on simulated time, through a seeded lossy network that
 * drops, duplicates and reorders datagrams: the handshake completes for every seed, both sides
 * export the same keying material, and every flight sent again on a timer goes exactly at the
 * deadline the endpoint announced, 1 s after a new flight and doubling after each timer
 * retransmission. Also: a peer that vanishes fails the handshake at its deadline, with the count
 * of retransmissions; hostile records mid-handshake are counted and do not derail it; close_notify
 * ends both sides. A failing seed replays (the seed is in the test's message).
 */
import { describe, expect, test } from "bun:test";
import { generateCertificate } from "../../src/webrtc/dtls/certificate.ts";
import { DtlsClient } from "../../src/webrtc/dtls/client.ts";
import type { DtlsEndpoint, DtlsEvent } from "../../src/webrtc/dtls/endpoint.ts";
import { DtlsServer } from "../../src/webrtc/dtls/server.ts";
import { rng } from "./fuzz.ts";

const clientCert = generateCertificate();
const serverCert = generateCertificate();

interface Network {
  /** Probability a datagram is dropped. */
  readonly loss: number;
  /** Probability a datagram is delivered twice. */
  readonly duplicate: number;
  /** Delivery takes 5 ms plus up to this much, drawn per copy (so datagrams overtake). */
  readonly jitterMs: number;
}

/** One endpoint as the harness sees it, with its send log checked against the deadline model. */
class Side {
  readonly events: DtlsEvent[] = [];
  /** Timer retransmissions that went at their deadline after the expected gap. */
  timerSends = 0;
  readonly violations: string[] = [];
  #lastSend: number | undefined;
  #gap = 1000;
  #announced: number | undefined;

  constructor(
    readonly name: string,
    readonly endpoint: DtlsEndpoint<string>,
  ) {}

  /** Runs `step` (a handleDatagram or handleTimeout at `now`) and checks what it sent. */
  step(now: number, timer: boolean, step: () => void, send: (d: Uint8Array) => void): void {
    const before = this.endpoint.retransmissions;
    if (timer && this.#announced !== now)
      this.violations.push(`${this.name}: timer at ${now}, announced ${this.#announced}`);
    step();
    let sent = 0;
    for (let d = this.endpoint.pollTransmit(); d !== undefined; d = this.endpoint.pollTransmit()) {
      send(d);
      sent++;
    }
    for (let e = this.endpoint.pollEvent(); e !== undefined; e = this.endpoint.pollEvent())
      this.events.push(e);
    const repeated = this.endpoint.retransmissions > before;
    if (sent > 0 && timer) {
      this.timerSends++;
      const gap = now - (this.#lastSend ?? Number.NaN);
      if (gap !== this.#gap)
        this.violations.push(
          `${this.name}: timer send at ${now} after ${gap} ms, not ${this.#gap}`,
        );
      this.#gap = Math.min(60_000, this.#gap * 2);
    } else if (sent > 0 && !repeated) this.#gap = 1000; // a new flight starts its timer afresh
    if (sent > 0) this.#lastSend = now;
    this.#announced = this.endpoint.pollTimeout();
  }

  get deadline(): number | undefined {
    return this.#announced;
  }
}

/**
 * What an attacker adds next to a datagram `d`, arriving before it: "junk" (off-path: random
 * bytes, a truncated copy, a copy whose sealed record has a byte changed, so it fails
 * authentication) or "tamper" (on-path: a copy with any one byte changed).
 */
type Hostile = "junk" | "tamper";

function hostile(kind: Hostile, d: Uint8Array, random: () => number): Uint8Array {
  const at = Math.floor(random() * d.length);
  const flip = 1 + Math.floor(random() * 255);
  if (kind === "tamper") return d.map((b, i) => (i === at ? b ^ flip : b));
  const pick = random();
  if (pick < 0.3) return Uint8Array.from({ length: 1 + at }, () => Math.floor(random() * 256));
  if (pick < 0.6) return d.slice(0, at);
  // a record of epoch 1 is sealed: change a byte of its body (past the 13-byte header)
  const epoch1 = d[3] === 0 && d[4] === 1 && d.length > 14;
  return epoch1
    ? d.map((b, i) => (i === 13 + (at % (d.length - 13)) ? b ^ flip : b))
    : d.slice(0, 5);
}

/** Runs a client-server handshake over `net` from `seed`; returns both sides after `untilMs`. */
function run(
  seed: number,
  net: Network,
  options: { cookie: boolean; untilMs?: number; serverGone?: boolean; hostile?: Hostile },
) {
  const random = rng(seed);
  const client = new DtlsClient({
    certificate: clientCert,
    remoteFingerprint: serverCert.fingerprint,
    srtpProfiles: [0x0007, 0x0001],
    handshakeTimeoutMs: options.untilMs ?? 600_000,
  });
  const server = new DtlsServer({
    certificate: serverCert,
    remoteFingerprint: clientCert.fingerprint,
    srtpProfiles: [0x0001, 0x0007],
    handshakeTimeoutMs: options.untilMs ?? 600_000,
    ...(options.cookie ? { cookieSecret: new Uint8Array(32).fill(9), peer: "10.0.0.1:5000" } : {}),
  });
  const sides = { c: new Side("client", client), s: new Side("server", server) };
  const inFlight: { at: number; to: "c" | "s"; data: Uint8Array; order: number }[] = [];
  let order = 0;
  const sender = (to: "c" | "s", now: number) => (d: Uint8Array) => {
    if (to === "s" && options.serverGone) return;
    if (random() < net.loss) return;
    const copies = random() < net.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++)
      inFlight.push({
        at: now + 5 + Math.floor(random() * net.jitterMs),
        to,
        data: d,
        order: order++,
      });
    if (options.hostile !== undefined && random() < 0.3)
      inFlight.push({ at: now + 1, to, data: hostile(options.hostile, d, random), order: order++ });
  };
  let now = 0;
  sides.c.step(now, false, () => client.connect(now), sender("s", now));
  const limit = options.untilMs ?? 600_000;
  for (let steps = 0; steps < 100_000; steps++) {
    if (client.state === "connected" && server.state === "connected" && inFlight.length === 0)
      break;
    if (client.state === "failed" || server.state === "failed") break;
    const next = Math.min(
      ...inFlight.map((p) => p.at),
      sides.c.deadline ?? Number.POSITIVE_INFINITY,
      sides.s.deadline ?? Number.POSITIVE_INFINITY,
    );
    if (!Number.isFinite(next) || next > limit) break;
    now = next;
    inFlight.sort((a, b) => a.at - b.at || a.order - b.order);
    while (inFlight.length > 0 && (inFlight[0] as { at: number }).at <= now) {
      const p = inFlight.shift() as (typeof inFlight)[number];
      const [side, back] = p.to === "c" ? [sides.c, "s" as const] : [sides.s, "c" as const];
      side.step(now, false, () => side.endpoint.handleDatagram(now, p.data), sender(back, now));
    }
    for (const [side, back] of [
      [sides.c, "s"],
      [sides.s, "c"],
    ] as const) {
      if (side.deadline !== undefined && side.deadline <= now)
        side.step(now, true, () => side.endpoint.handleTimeout(now), sender(back, now));
    }
  }
  return { client, server, sides, now };
}

describe("DTLS client against DTLS server on simulated time", () => {
  const lossy: Network = { loss: 0.15, duplicate: 0.1, jitterMs: 40 };

  for (const cookie of [false, true]) {
    test(`300 seeds, 15% loss, 10% duplicated, reordered, ${cookie ? "with" : "without"} the cookie: every handshake completes with the same keys; retransmissions go at their deadlines`, () => {
      let timerSends = 0;
      for (let seed = 1; seed <= 300; seed++) {
        const { client, server, sides } = run(seed, lossy, { cookie });
        const why = `seed ${seed}: client ${client.state} ${JSON.stringify(sides.c.events)}, server ${server.state} ${JSON.stringify(sides.s.events)}`;
        expect(client.state, why).toBe("connected");
        expect(server.state, why).toBe("connected");
        expect([...sides.c.violations, ...sides.s.violations], why).toEqual([]);
        expect(sides.c.events.map((e) => e.type)).toEqual(["connected"]);
        expect(sides.s.events.map((e) => e.type)).toEqual(["connected"]);
        const c = sides.c.events[0];
        const s = sides.s.events[0];
        // the server's preference wins: AES-CM first in its list, offered by the client
        expect(c?.type === "connected" && c.srtpProfile).toBe(0x0001);
        expect(s?.type === "connected" && s.srtpProfile).toBe(0x0001);
        expect(Buffer.from(client.exportKeyingMaterial("EXTRACTOR-dtls_srtp", 60))).toEqual(
          Buffer.from(server.exportKeyingMaterial("EXTRACTOR-dtls_srtp", 60)),
        );
        expect(client.helloVerifyRequests).toBe(cookie ? 1 : 0);
        expect(client.rejects.toJSON(), why).toEqual({});
        expect(server.rejects.toJSON(), why).toEqual({});
        timerSends += sides.c.timerSends + sides.s.timerSends;
      }
      expect(timerSends).toBeGreaterThan(50); // the loss made the timers work
    }, 60_000);
  }

  test("a clean network: no retransmission at all, connected within one round trip per flight", () => {
    const { client, server, now } = run(
      7,
      { loss: 0, duplicate: 0, jitterMs: 0 },
      { cookie: true },
    );
    expect(client.state).toBe("connected");
    expect(server.state).toBe("connected");
    expect(client.retransmissions + server.retransmissions).toBe(0);
    expect(now).toBe(6 * 5); // CH, HVR, CH, server flight, client flight, server Finished: 5 ms each
  });

  test("off-path junk (garbage, truncated copies, forged sealed records) is refused and counted; every handshake completes", () => {
    let refused = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const { client, server } = run(
        seed,
        { loss: 0.05, duplicate: 0, jitterMs: 10 },
        {
          cookie: true,
          hostile: "junk",
        },
      );
      expect(client.state, `seed ${seed}`).toBe("connected");
      expect(server.state, `seed ${seed}`).toBe("connected");
      refused += client.rejects.count() + server.rejects.count();
    }
    expect(refused).toBeGreaterThan(100);
  }, 30_000);

  test("on-path tampering (any byte of a copy that arrives first): never connected on different keys; a failure says why", () => {
    const outcomes = new Map<string, number>();
    for (let seed = 1; seed <= 100; seed++) {
      const { client, server, sides } = run(
        seed,
        { loss: 0, duplicate: 0, jitterMs: 10 },
        {
          cookie: false,
          hostile: "tamper",
        },
      );
      if (client.state === "connected" && server.state === "connected")
        expect(Buffer.from(client.exportKeyingMaterial("EXTRACTOR-dtls_srtp", 60))).toEqual(
          Buffer.from(server.exportKeyingMaterial("EXTRACTOR-dtls_srtp", 60)),
        );
      else {
        const failed = [...sides.c.events, ...sides.s.events].find((e) => e.type === "failed");
        expect(failed?.type === "failed" && failed.reason.length, `seed ${seed}`).toBeGreaterThan(
          10,
        );
      }
      const key = `${client.state}/${server.state}`;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    expect(outcomes.get("connected/connected") ?? 0).toBeGreaterThan(0);
  }, 30_000);

  test("a server that never answers: the client fails at its handshake deadline, retransmissions counted", () => {
    const { client, sides, now } = run(
      3,
      { loss: 0, duplicate: 0, jitterMs: 0 },
      {
        cookie: false,
        serverGone: true,
        untilMs: 30_000,
      },
    );
    expect(client.state).toBe("failed");
    expect(now).toBe(30_000);
    expect(sides.c.timerSends).toBe(4); // at 1, 3, 7 and 15 s; the next (31 s) is past the deadline
    const e = sides.c.events[0];
    expect(e?.type === "failed" && e.reason).toBe(
      "the handshake did not complete in 30000 ms: the peer did not answer (4 retransmissions)",
    );
    expect(client.pollTimeout()).toBeUndefined();
    expect(() => client.exportKeyingMaterial("EXTRACTOR-dtls_srtp", 60)).toThrow(/not connected/);
  });

  test("close(): close_notify reaches the peer; both sides report closed and stop", () => {
    const { client, server } = run(11, { loss: 0, duplicate: 0, jitterMs: 0 }, { cookie: false });
    client.close();
    const alert = client.pollTransmit();
    expect(alert).toBeDefined();
    expect(client.pollEvent()).toEqual({ type: "closed" });
    server.handleDatagram(1000, alert as Uint8Array);
    expect(server.pollEvent()).toEqual({ type: "closed" });
    expect(server.state).toBe("closed");
    expect(server.rejects.toJSON()).toEqual({});
    client.handleDatagram(1001, new Uint8Array([22, 254, 253])); // ignored once closed
    expect(client.pollTransmit()).toBeUndefined();
  });
});
