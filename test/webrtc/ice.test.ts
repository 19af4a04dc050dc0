/** ICE-lite agent and ICE client on simulated time: selection, refusals, consent, retransmission. */
import { describe, expect, test } from "bun:test";
import { SocketAddr } from "../../src/io/addr.ts";
import {
  IceClient,
  type IceClientEvent,
  type IceClientReason,
} from "../../src/webrtc/ice-client.ts";
import {
  IceLiteAgent,
  type IceLiteEvent,
  type IceLiteReason,
  type IceTransmit,
} from "../../src/webrtc/ice-lite.ts";
import {
  buildStun,
  checkIntegrity,
  parseStun,
  type StunAttributeInit,
  type StunMessage,
  shortTermKey,
} from "../../src/webrtc/stun.ts";
import { rng } from "./fuzz.ts";

const SERVER = { ufrag: "srvr", pwd: "server-password-0123456789" };
const BROWSER = { ufrag: "brws", pwd: "browser-password-0123456789" };
const serverKey = shortTermKey(SERVER.pwd);
const serverAddr = SocketAddr.parse("198.51.100.1", 443);
const peerA = SocketAddr.parse("192.0.2.10", 50000);
const peerB = SocketAddr.parse("2001:db8::10", 50001);
const peerC = SocketAddr.parse("192.0.2.11", 50002);

function agent(now = 0): IceLiteAgent {
  return new IceLiteAgent(
    { localUfrag: SERVER.ufrag, localPwd: SERVER.pwd, remoteUfrag: BROWSER.ufrag },
    now,
  );
}

let nextId = 1;

interface CheckOptions {
  readonly nominate?: boolean;
  readonly username?: string;
  readonly password?: string;
  readonly extra?: readonly StunAttributeInit[];
  readonly controlled?: boolean;
  readonly priority?: boolean;
  readonly fingerprint?: boolean;
  readonly integrity?: boolean;
}

/** A check as the browser sends it: GOOG-NETWORK-INFO, ICE-CONTROLLING, PRIORITY, maybe USE-CANDIDATE. */
function check(o: CheckOptions = {}): Uint8Array {
  const attributes: StunAttributeInit[] = [
    { type: "username", value: o.username ?? `${SERVER.ufrag}:${BROWSER.ufrag}` },
    { type: "raw", code: 0xc057, value: new Uint8Array([0, 1, 0, 0x0a]) },
    o.controlled === true
      ? { type: "ice-controlled", value: 42n }
      : { type: "ice-controlling", value: 42n },
    ...(o.priority === false ? [] : [{ type: "priority", value: 1_853_824_767 } as const]),
    ...(o.nominate === true ? [{ type: "use-candidate" } as const] : []),
    ...(o.extra ?? []),
  ];
  const id = new Uint8Array(12);
  new DataView(id.buffer).setUint32(8, nextId++);
  const key = shortTermKey(o.password ?? SERVER.pwd);
  return buildStun(
    { cls: "request", transactionId: id, attributes },
    o.integrity === false
      ? { fingerprint: o.fingerprint ?? true }
      : { integrity: key, fingerprint: o.fingerprint ?? true },
  );
}

function drain<T>(poll: () => T | undefined): T[] {
  const out: T[] = [];
  for (let x = poll(); x !== undefined; x = poll()) out.push(x);
  return out;
}

/** Feeds `datagram` and returns the refusal reason, the answers and the events. */
function feed(a: IceLiteAgent, now: number, from: SocketAddr, datagram: Uint8Array) {
  const refused = a.handle(now, from, datagram)?.reason;
  return {
    refused,
    sent: drain(() => a.pollTransmit()),
    events: drain(() => a.pollEvent()),
  };
}

function only(sent: IceTransmit[], to: SocketAddr): StunMessage {
  expect(sent.length).toBe(1);
  const [t] = sent as [IceTransmit];
  expect(t.to.equals(to)).toBe(true);
  const r = parseStun(t.data);
  if (!r.ok) throw new Error(r.reason);
  expect(r.value.hasFingerprint).toBe(true);
  return r.value;
}

describe("ICE-lite agent", () => {
  test("latches on the first authenticated check, before any USE-CANDIDATE, and answers it signed", () => {
    const a = agent();
    expect(a.state).toBe("checking");
    const request = check();
    const { refused, sent, events } = feed(a, 100, peerA, request);
    expect(refused).toBeUndefined();
    const res = only(sent, peerA);
    expect(res.cls).toBe("success");
    expect([...res.transactionId]).toEqual([...request.subarray(8, 20)]);
    expect(res.xorMappedAddress?.toString()).toBe(peerA.toString());
    expect(checkIntegrity(res, serverKey).ok).toBe(true);
    expect(events).toEqual([
      { type: "selected", address: peerA, nominated: false },
      { type: "state", state: "connected" },
    ]);
    expect(a.state).toBe("connected");
    expect(a.selected?.equals(peerA)).toBe(true);
    expect(a.rejects.count()).toBe(0);
  });

  test("GOOG-NETWORK-INFO is ignored; a USE-CANDIDATE check from a new address moves the selection", () => {
    const a = agent();
    feed(a, 0, peerA, check());
    // another address without USE-CANDIDATE: answered, not selected
    let r = feed(a, 10, peerB, check());
    expect(only(r.sent, peerB).xorMappedAddress?.toString()).toBe(peerB.toString());
    expect(r.events).toEqual([]);
    expect(a.selected?.equals(peerA)).toBe(true);
    // nominated from B: selected moves
    r = feed(a, 20, peerB, check({ nominate: true }));
    expect(only(r.sent, peerB).cls).toBe("success");
    expect(r.events).toEqual([{ type: "selected", address: peerB, nominated: true }]);
    expect(a.selected?.equals(peerB)).toBe(true);
    // the same nomination again: nothing new
    expect(feed(a, 30, peerB, check({ nominate: true })).events).toEqual([]);
    // nominated from C: moves again
    expect(feed(a, 40, peerC, check({ nominate: true })).events).toEqual([
      { type: "selected", address: peerC, nominated: true },
    ]);
    expect(a.rejects.count()).toBe(0);
  });

  test("a nomination of the latched address is reported once", () => {
    const a = agent();
    feed(a, 0, peerA, check());
    expect(feed(a, 5, peerA, check({ nominate: true })).events).toEqual([
      { type: "selected", address: peerA, nominated: true },
    ]);
    expect(feed(a, 6, peerA, check({ nominate: true })).events).toEqual([]);
  });

  test("wrong password or username: 401 unsigned, counted, nothing selected", () => {
    const a = agent();
    let r = feed(a, 0, peerA, check({ password: "not-the-password-000000" }));
    expect(r.refused).toBe("ice-bad-integrity");
    let res = only(r.sent, peerA);
    expect([res.cls, res.errorCode?.code, res.integrityAt]).toEqual(["error", 401, -1]);
    r = feed(a, 0, peerA, check({ username: `${SERVER.ufrag}:someone-else` }));
    expect(r.refused).toBe("ice-bad-username");
    res = only(r.sent, peerA);
    expect([res.cls, res.errorCode?.code]).toEqual(["error", 401]);
    expect(r.events).toEqual([]);
    expect(a.selected).toBeUndefined();
    expect(a.state).toBe("checking");
    expect(a.rejects.toJSON()).toEqual({ "ice-bad-integrity": 1, "ice-bad-username": 1 });
  });

  test("no USERNAME or no MESSAGE-INTEGRITY: 400 unsigned", () => {
    const a = agent();
    const r = feed(a, 0, peerA, check({ integrity: false }));
    expect(r.refused).toBe("ice-no-credentials");
    const res = only(r.sent, peerA);
    expect([res.errorCode?.code, res.integrityAt]).toEqual([400, -1]);
  });

  test("unknown comprehension-required attributes: 420 listing them, signed", () => {
    const a = agent();
    const extra: StunAttributeInit[] = [
      { type: "raw", code: 0x0031, value: new Uint8Array(2) },
      { type: "raw", code: 0x7abc, value: new Uint8Array(0) },
      { type: "raw", code: 0x8abc, value: new Uint8Array(1) },
    ];
    const r = feed(a, 0, peerA, check({ extra }));
    expect(r.refused).toBe("ice-unknown-attribute");
    const res = only(r.sent, peerA);
    expect(res.errorCode).toEqual({ code: 420, reason: "Unknown Attribute" });
    expect(res.unknownAttributes).toEqual([0x0031, 0x7abc]);
    expect(checkIntegrity(res, serverKey).ok).toBe(true);
    expect(a.selected).toBeUndefined();
  });

  test("ICE-CONTROLLED from the peer: 487; no PRIORITY: 400 signed", () => {
    const a = agent();
    let r = feed(a, 0, peerA, check({ controlled: true }));
    expect(r.refused).toBe("ice-role-conflict");
    let res = only(r.sent, peerA);
    expect(res.errorCode?.code).toBe(487);
    expect(checkIntegrity(res, serverKey).ok).toBe(true);
    r = feed(a, 0, peerA, check({ priority: false }));
    expect(r.refused).toBe("ice-no-priority");
    res = only(r.sent, peerA);
    expect(res.errorCode?.code).toBe(400);
    expect(checkIntegrity(res, serverKey).ok).toBe(true);
  });

  test("silently dropped: no FINGERPRINT, responses, other methods, garbage; indications accepted", () => {
    const a = agent();
    const id = new Uint8Array(12);
    const cases: [Uint8Array, IceLiteReason | undefined][] = [
      [check({ fingerprint: false }), "ice-no-fingerprint"],
      [buildStun({ cls: "success", transactionId: id }, { fingerprint: true }), "ice-not-request"],
      [buildStun({ cls: "request", method: 3, transactionId: id }), "ice-bad-method"],
      [new Uint8Array([0x16, 0xfe, 0xfd, 0, 0]), "stun-short"],
      [check().subarray(0, 40), "stun-bad-length"],
      [buildStun({ cls: "indication", transactionId: id }, { fingerprint: true }), undefined],
    ];
    for (const [datagram, why] of cases) {
      const r = feed(a, 0, peerA, datagram);
      expect([r.refused, r.sent.length, r.events.length]).toEqual([why, 0, 0]);
    }
    expect(a.rejects.count()).toBe(5);
  });
});

describe("consent", () => {
  test("disconnected after 10 s and failed after 30 s of silence, not before", () => {
    const a = agent(0);
    feed(a, 1_000, peerA, check());
    expect(a.pollTimeout()).toBe(11_000);
    a.handleTimeout(10_999);
    expect(a.state).toBe("connected");
    a.handleTimeout(11_000);
    expect(a.state).toBe("disconnected");
    expect(drain(() => a.pollEvent())).toEqual([{ type: "state", state: "disconnected" }]);
    expect(a.pollTimeout()).toBe(31_000);
    // a check brings it back and restarts the clock
    expect(feed(a, 20_000, peerA, check()).events).toEqual([{ type: "state", state: "connected" }]);
    expect(a.pollTimeout()).toBe(30_000);
    a.handleTimeout(30_000);
    a.handleTimeout(49_999);
    expect(a.state).toBe("disconnected");
    expect(a.pollTimeout()).toBe(50_000);
    a.handleTimeout(50_000);
    expect(a.state).toBe("failed");
    expect(drain(() => a.pollEvent())).toEqual([
      { type: "state", state: "disconnected" },
      { type: "state", state: "failed", reason: "consent" },
    ]);
    expect(a.pollTimeout()).toBeUndefined();
    const late = feed(a, 50_001, peerA, check());
    expect([late.refused, late.sent.length]).toEqual(["ice-closed", 0]);
  });

  test("checks from an address that is not selected do not refresh consent", () => {
    const a = agent(0);
    feed(a, 0, peerA, check());
    for (let t = 5_000; t < 30_000; t += 5_000) feed(a, t, peerB, check());
    a.handleTimeout(29_999);
    expect(a.state).toBe("disconnected");
    a.handleTimeout(30_000);
    expect(a.state).toBe("failed");
  });

  test("regular checks keep it connected; a session never checked fails 30 s after creation", () => {
    const a = agent(0);
    for (let t = 0; t <= 120_000; t += 2_500) {
      a.handleTimeout(t);
      feed(a, t, peerA, check());
      expect(a.state).toBe("connected");
    }
    const idle = agent(1_000);
    expect(idle.pollTimeout()).toBe(31_000);
    idle.handleTimeout(30_999);
    expect(idle.state).toBe("checking");
    // time passing is also applied by handle
    const r = feed(idle, 31_000, peerA, check());
    expect([r.refused, idle.state]).toEqual(["ice-closed", "failed"]);
  });
});

/** Deterministic random bytes. */
function seeded(seed: number): (n: number) => Uint8Array {
  const r = rng(seed);
  return (n) => Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}

interface Run {
  readonly client: IceClient;
  readonly server: IceLiteAgent;
  readonly clientEvents: [number, IceClientEvent][];
  readonly serverEvents: [number, IceLiteEvent][];
  /** When each client request was sent. */
  readonly sends: number[];
}

/**
 * Runs a client against a server from t = 0 to `until` on simulated time, feeding each one's
 * transmits to the other with no delay; client datagram `i` is lost when `lose(i)`.
 */
function simulate(
  until: number,
  lose: (i: number) => boolean,
  clientPwd = SERVER.pwd,
  refreshMs?: number,
): Run {
  const client = new IceClient(
    {
      localUfrag: BROWSER.ufrag,
      remoteUfrag: SERVER.ufrag,
      remotePwd: clientPwd,
      remote: serverAddr,
      random: seeded(7),
      ...(refreshMs === undefined ? {} : { refreshMs }),
    },
    0,
  );
  const server = agent(0);
  const run: Run = { client, server, clientEvents: [], serverEvents: [], sends: [] };
  let now = 0;
  for (;;) {
    for (const t of drain(() => client.pollTransmit())) {
      expect(t.to.equals(serverAddr)).toBe(true);
      const i = run.sends.push(now) - 1;
      if (lose(i)) continue;
      server.handle(now, peerA, t.data);
      const answers = drain(() => server.pollTransmit());
      for (const e of drain(() => server.pollEvent())) run.serverEvents.push([now, e]);
      for (const answer of answers) {
        expect(answer.to.equals(peerA)).toBe(true);
        expect(client.handle(now, serverAddr, answer.data)).toBeUndefined();
      }
    }
    for (const e of drain(() => client.pollEvent())) run.clientEvents.push([now, e]);
    for (const e of drain(() => server.pollEvent())) run.serverEvents.push([now, e]);
    const deadlines = [client.pollTimeout(), server.pollTimeout()].filter(
      (d): d is number => d !== undefined,
    );
    if (deadlines.length === 0) break;
    const next = Math.max(now, Math.min(...deadlines));
    if (next > until) break;
    now = next;
    client.handleTimeout(now);
    server.handleTimeout(now);
  }
  return run;
}

describe("ICE client ↔ ICE-lite agent", () => {
  test("end to end: one check, both connected, mapped address and nominated selection", () => {
    const run = simulate(1_000, () => false);
    expect(run.sends).toEqual([0]);
    expect(run.clientEvents).toEqual([[0, { type: "connected", mapped: peerA }]]);
    expect(run.client.mapped?.equals(peerA)).toBe(true);
    expect(run.serverEvents).toEqual([
      [0, { type: "selected", address: peerA, nominated: true }],
      [0, { type: "state", state: "connected" }],
    ]);
    expect([run.client.state, run.server.state]).toEqual(["connected", "connected"]);
  });

  test("the first three requests lost: retransmissions at 500, 1500 and 3500 ms recover", () => {
    const run = simulate(5_000, (i) => i < 3);
    expect(run.sends).toEqual([0, 500, 1_500, 3_500]);
    expect(run.clientEvents).toEqual([[3_500, { type: "connected", mapped: peerA }]]);
    expect(run.server.state).toBe("connected");
  });

  test("everything lost: 7 sends, then failure at 39.5 s (RFC 5389 §7.2.1)", () => {
    const run = simulate(100_000, () => true);
    expect(run.sends).toEqual([0, 500, 1_500, 3_500, 7_500, 15_500, 31_500]);
    expect(run.clientEvents).toEqual([[39_500, { type: "failed", reason: "timeout" }]]);
    expect(run.client.state).toBe("failed");
    expect(run.client.pollTimeout()).toBeUndefined();
  });

  test("consent checks every 5 s keep both sides connected for minutes", () => {
    const run = simulate(300_000, () => false);
    expect(run.sends.length).toBe(61);
    expect(run.sends.slice(0, 3)).toEqual([0, 5_000, 10_000]);
    expect([run.client.state, run.server.state]).toEqual(["connected", "connected"]);
    expect(run.server.rejects.count() + run.client.rejects.count()).toBe(0);
  });

  test("without consent checks the server fails at 30 s; losing them fails the client", () => {
    const quiet = simulate(60_000, () => false, SERVER.pwd, Number.POSITIVE_INFINITY);
    expect(quiet.serverEvents.map(([t, e]) => [t, e.type === "state" ? e.state : e.type])).toEqual([
      [0, "selected"],
      [0, "connected"],
      [10_000, "disconnected"],
      [30_000, "failed"],
    ]);
    const cut = simulate(100_000, (i) => i > 0);
    expect(cut.clientEvents).toEqual([
      [0, { type: "connected", mapped: peerA }],
      [5_000 + 39_500, { type: "failed", reason: "timeout" }],
    ]);
  });

  test("a client with the wrong password gets 401 and fails", () => {
    const run = simulate(10_000, () => false, "not-the-password-000000");
    expect(run.clientEvents).toEqual([
      [0, { type: "failed", reason: "error-response", code: 401 }],
    ]);
    expect(run.server.rejects.toJSON()).toEqual({ "ice-bad-integrity": 1 });
  });
});

describe("ICE client refusals", () => {
  test("wrong transaction, wrong source, bad integrity, no mapped address, not a response", () => {
    const client = new IceClient(
      {
        localUfrag: BROWSER.ufrag,
        remoteUfrag: SERVER.ufrag,
        remotePwd: SERVER.pwd,
        remote: serverAddr,
        random: seeded(3),
      },
      0,
    );
    const [sent] = drain(() => client.pollTransmit()) as [IceTransmit];
    const req = parseStun(sent.data);
    if (!req.ok) throw new Error(req.reason);
    const id = req.value.transactionId.slice();
    const mappedAttr: StunAttributeInit = { type: "xor-mapped-address", value: peerA };
    const response = (o: { id?: Uint8Array; key?: Uint8Array; mapped?: boolean }) =>
      buildStun(
        {
          cls: "success",
          transactionId: o.id ?? id,
          attributes: o.mapped === false ? [] : [mappedAttr],
        },
        { integrity: o.key ?? serverKey, fingerprint: true },
      );
    const cases: [SocketAddr, Uint8Array, IceClientReason][] = [
      [serverAddr, response({ id: new Uint8Array(12) }), "ice-unknown-transaction"],
      [peerC, response({}), "ice-asymmetric"],
      [serverAddr, response({ key: shortTermKey("x") }), "ice-bad-integrity"],
      [serverAddr, response({ mapped: false }), "ice-no-mapped-address"],
      [serverAddr, sent.data, "ice-not-response"],
      [serverAddr, new Uint8Array(3), "stun-short"],
    ];
    for (const [from, datagram, why] of cases) {
      expect(client.handle(10, from, datagram)?.reason).toBe(why);
    }
    expect(client.state).toBe("checking");
    expect(client.handle(20, serverAddr, response({}))).toBeUndefined();
    expect(client.state).toBe("connected");
    // the same answer again is no longer for a transaction in flight
    expect(client.handle(21, serverAddr, response({}))?.reason).toBe("ice-unknown-transaction");
    expect(client.rejects.count()).toBe(7);
  });
});
