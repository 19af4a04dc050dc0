/**
 * Fuzz targets: the STUN parser (every getter and the integrity check run on what it accepts)
 * and an ICE-lite agent's `handle`, both fed from the RFC 5769 vectors and Chromium-like checks.
 */
import { SocketAddr } from "../../../src/io/addr.ts";
import { IceLiteAgent } from "../../../src/webrtc/ice-lite.ts";
import { buildStun, checkIntegrity, parseStun, shortTermKey } from "../../../src/webrtc/stun.ts";
import type { FuzzTarget } from "../fuzz.ts";
import { REQUEST, REQUEST_LONG_TERM, RESPONSE_IPV4, RESPONSE_IPV6 } from "../stun-vectors.ts";

const LOCAL = { ufrag: "srvr", pwd: "server-password-0123456789" };
const REMOTE_UFRAG = "chrm";
const key = shortTermKey(LOCAL.pwd);
const peer = SocketAddr.parse("192.0.2.7", 50000);

/** A check as Chromium sends it to the agent (with GOOG-NETWORK-INFO), nominating or not. */
function check(id: number, nominate: boolean): Uint8Array {
  return buildStun(
    {
      cls: "request",
      transactionId: new Uint8Array(12).fill(id),
      attributes: [
        { type: "username", value: `${LOCAL.ufrag}:${REMOTE_UFRAG}` },
        { type: "raw", code: 0xc057, value: new Uint8Array([0, 1, 0, 0x0a]) },
        { type: "ice-controlling", value: 0x1122334455667788n },
        ...(nominate ? [{ type: "use-candidate" } as const] : []),
        { type: "priority", value: 1_853_824_767 },
      ],
    },
    { integrity: key, fingerprint: true },
  );
}

const errorResponse = buildStun(
  {
    cls: "error",
    transactionId: new Uint8Array(12).fill(9),
    attributes: [
      { type: "error-code", value: { code: 420, reason: "Unknown Attribute" } },
      { type: "unknown-attributes", value: [0x0031, 0x7fff] },
      { type: "mapped-address", value: SocketAddr.parse("2001:db8::1", 3478) },
    ],
  },
  { integrity: key, fingerprint: true },
);

const stunSamples = [
  REQUEST,
  RESPONSE_IPV4,
  RESPONSE_IPV6,
  REQUEST_LONG_TERM,
  check(1, false),
  errorResponse,
];

const parser: FuzzTarget = {
  name: "stun-parse",
  samples: stunSamples,
  feed(input) {
    const r = parseStun(input);
    if (!r.ok) return r.reason;
    const m = r.value;
    // every getter must be safe on whatever the parser accepted
    void [m.username, m.software, m.realm, m.nonce, m.mappedAddress, m.xorMappedAddress];
    void [m.errorCode, m.unknownAttributes, m.priority, m.useCandidate];
    void [m.iceControlled, m.iceControlling, checkIntegrity(m, key)];
    return undefined;
  },
};

const agent = new IceLiteAgent(
  { localUfrag: LOCAL.ufrag, localPwd: LOCAL.pwd, remoteUfrag: REMOTE_UFRAG },
  0,
);

const iceLite: FuzzTarget = {
  name: "ice-lite-handle",
  samples: [check(1, false), check(2, true), ...stunSamples],
  feed(input) {
    // time stands still, so the agent never times out however long the run
    const r = agent.handle(1_000, peer, input);
    while (agent.pollTransmit() !== undefined || agent.pollEvent() !== undefined);
    return r?.reason;
  },
};

/** The targets of this file, for `runFuzz` and fuzz-all.ts. */
export const targets: FuzzTarget[] = [parser, iceLite];
