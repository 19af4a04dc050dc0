import {
  type Backend,
  type BackendFactory,
  type BackendKind,
  createBackend,
  decodeUdpPacket,
  type EventSink,
  encodeUdpPacket,
  type NetEvent,
  SimBackend,
  type SimHost,
  SimNetwork,
  SocketAddr,
  type UringOptions,
} from "../../src/index.ts";

/** The kernel's backends (the conformance suite also runs on the simulated one, "sim"). */
export const KINDS: readonly Exclude<BackendKind, "auto">[] = ["uring", "epoll"];

/** A backend the harness can make: a kernel one, or a `SimBackend` on the simulated machine. */
export type HarnessKind = Exclude<BackendKind, "auto"> | "sim";

/**
 * The simulated machine every `Harness("sim")` shares (loopback only), as the kernel's backends
 * share this machine's: two harnesses talk to each other, and ports stay taken until closed.
 */
const simNetwork = new SimNetwork(1);
const simHost = simNetwork.addHost("localhost");

type Packet = Extract<NetEvent, { kind: "udp-packet" }>;
type TunPacket = Extract<NetEvent, { kind: "tun-packet" }>;

/**
 * A backend plus the events it delivered, for tests. Packets are copied (their views die when the
 * sink returns); an optional `onPacket` runs inside the sink, where echoing the view is zero-copy.
 */
export class Harness {
  readonly backend: Backend;
  readonly events: NetEvent[] = [];
  onPacket: ((p: Packet) => void) | undefined;
  /** Runs inside the sink for every TUN/TAP packet (where writing the view back is zero-copy). */
  onTunPacket: ((p: TunPacket) => void) | undefined;

  /**
   * A harness on a backend of `kind`, or on a `SimBackend` on the simulated `host` of `network`
   * given (instead of the shared simulated machine); `wrap` puts middleware around it.
   */
  constructor(
    kind: HarnessKind | { readonly network: SimNetwork; readonly host: SimHost },
    options: Omit<UringOptions, "onEvent"> = {},
    wrap: (make: BackendFactory) => BackendFactory = (make) => make,
  ) {
    const onEvent: EventSink = (_owner, e) => {
      if (e.kind === "udp-packet") {
        this.onPacket?.(e);
        this.events.push({ ...e, data: e.data.slice() });
      } else if (e.kind === "tun-packet") {
        this.events.push({ ...e, data: e.data.slice() });
        this.onTunPacket?.(e);
      } else {
        this.events.push(e);
      }
    };
    const make: BackendFactory = (sink) => {
      if (typeof kind !== "string")
        return new SimBackend(kind.network, kind.host, { ...options, onEvent: sink });
      if (kind === "sim") return new SimBackend(simNetwork, simHost, { ...options, onEvent: sink });
      return createBackend(kind, { ...options, onEvent: sink });
    };
    this.backend = wrap(make)(onEvent);
  }

  /** Polls until `done()` or `maxPolls` polls of up to 20 ms; returns whether `done()` held. */
  until(done: () => boolean, maxPolls = 500): boolean {
    for (let i = 0; i < maxPolls && !done(); i++) this.backend.poll(20);
    return done();
  }

  /** Opens a UDP socket and returns its bound address (throws with the error otherwise). */
  listen(socket: number, address = "127.0.0.1", port = 0, reusePort = false): SocketAddr {
    this.backend.act(0, {
      kind: "udp-listen",
      socket,
      bind: SocketAddr.parse(address, port),
      reusePort,
    });
    const result = () =>
      this.events.find((e) => e.kind === "udp-listen-result" && e.socket === socket);
    this.until(() => result() !== undefined);
    const r = result();
    if (r?.kind !== "udp-listen-result" || r.local === undefined) {
      throw new Error(`listen failed: ${JSON.stringify(r)}`);
    }
    return r.local;
  }

  /**
   * Answers every UDP datagram read from TUN device `device`: writes back into the device the
   * reply (addresses and ports swapped, the same payload), as a userspace responder would.
   */
  replyOnTun(device: number): void {
    this.onTunPacket = (p) => {
      const d = decodeUdpPacket(p.data);
      if (typeof d === "string") throw new Error(`not a UDP datagram: ${d}`);
      const data = encodeUdpPacket(d.to, d.from, d.payload);
      this.backend.act(0, { kind: "tun-send", device, data });
    };
  }

  /** Packets received on `socket` so far. */
  packets(socket: number): Packet[] {
    return this.events.filter((e): e is Packet => e.kind === "udp-packet" && e.socket === socket);
  }
}
