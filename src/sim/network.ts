/**
 * The simulated network: hosts, links between them with latency, MTU and seeded faults, and a
 * virtual clock that moves only when told to (`advanceTo`, or a `SimBackend` poll).
 */
import type { SocketAddr } from "../io/addr.ts";
import { UDP_HEADER_LENGTH, udpIpHeaderLength } from "../wire/index.ts";
import { type DropReason, describeFlow, type Fabric, type HostOptions, SimHost } from "./host.ts";
import { SimRandom } from "./random.ts";

/** A link's properties (`SimNetwork.link`); the same both ways. Probabilities are 0 to 1. */
export interface LinkOptions {
  /** One-way delay in ms; default 1. */
  readonly latencyMs?: number;
  /** Largest IP packet in bytes (at least 68); default 1500. Larger datagrams go as fragments. */
  readonly mtu?: number;
  /** Chance that each packet (each fragment of a datagram) is lost; default 0. */
  readonly loss?: number;
  /** Chance that a datagram arrives twice; default 0. */
  readonly duplicate?: number;
  /** Chance that a datagram is held back by an extra delay up to `reorderMs`; default 0. */
  readonly reorder?: number;
  /** The longest extra delay of a held-back datagram, in ms; default `latencyMs`. */
  readonly reorderMs?: number;
  /** Chance that one bit of a datagram's payload is flipped on the way; default 0. */
  readonly corrupt?: number;
}

/** What the network did, counted since creation. */
export interface SimNetworkStats {
  /** Datagrams put on links. */
  sent: number;
  /** Datagrams and packets handed to a socket or a device queue (local ones included). */
  delivered: number;
  /** Datagrams a link lost (any of its fragments). */
  lost: number;
  /** Datagrams a link delivered twice. */
  duplicated: number;
  /** Datagrams a link held back. */
  reordered: number;
  /** Datagrams a link corrupted. */
  corrupted: number;
  /** Datagrams for a port no socket is bound to. */
  noListener: number;
  /** Datagrams and packets dropped by a full socket buffer or device queue. */
  overflow: number;
  /** Datagrams and packets that nothing on the receiving host leads to. */
  unroutable: number;
  /** Packets written into a device that are not UDP over IP, or malformed. */
  rejected: number;
}

interface Link {
  readonly a: SimHost;
  readonly b: SimHost;
  readonly latencyMs: number;
  readonly mtu: number;
  readonly loss: number;
  readonly duplicate: number;
  readonly reorder: number;
  readonly reorderMs: number;
  readonly corrupt: number;
  /** The link's own stream: traffic elsewhere does not change this link's faults. */
  readonly random: SimRandom;
}

/** A datagram on its way: it lands on `host` at `at`; `seq` keeps sends in order. */
interface InFlight {
  readonly at: number;
  readonly seq: number;
  readonly host: SimHost;
  readonly from: SocketAddr;
  readonly to: SocketAddr;
  readonly data: Uint8Array;
}

/**
 * A simulated network of hosts and links, deterministic from its seed.
 *
 * Contract: time starts at 0 and moves only forward, only through `advanceTo` (which a
 * `SimBackend` poll calls instead of sleeping); every datagram on a link draws its faults from
 * that link's own seeded stream, in the order datagrams are sent, so one seed and one sequence of
 * calls give the same deliveries, drops and times on every run. A datagram on a link arrives
 * `latencyMs` after it was sent (plus its hold-back when reordered), in send order otherwise;
 * local datagrams (loopback, own addresses, TUN devices) land at once, without faults. What the
 * network does to traffic (faults, drops) is counted in `stats()` and, when `onTrace` is set,
 * told as lines of text.
 */
export class SimNetwork {
  /** The seed given. */
  readonly seed: number;
  /** Receives a line for every fault and drop ("12.000 a>b 10.0.0.1:5>10.0.0.2:7 64B lost"). */
  onTrace: ((line: string) => void) | undefined = undefined;
  /** The virtual clock, for options that take one (`() => network.now`). */
  readonly clock = (): number => this.#now;
  #now = 0;
  #seq = 0;
  #fd = 1_000_000;
  readonly #random: SimRandom;
  readonly #hosts: SimHost[] = [];
  readonly #links: Link[] = [];
  readonly #inFlight = new ArrivalQueue();
  readonly #stats: SimNetworkStats = {
    sent: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    corrupted: 0,
    noListener: 0,
    overflow: 0,
    unroutable: 0,
    rejected: 0,
  };
  readonly #fabric: Fabric = {
    forward: (host, from, to, data) => this.#forward(host, from, to, data),
    delivered: () => {
      this.#stats.delivered++;
    },
    dropped: (reason: DropReason, what: string) => {
      this.#stats[reason]++;
      this.#trace(`${what} ${reason}`);
    },
    newFd: () => this.#fd++,
  };

  /** @param seed selects every random choice the network makes */
  constructor(seed: number) {
    this.seed = seed;
    this.#random = new SimRandom(seed);
  }

  /** Virtual milliseconds since the network was made. */
  get now(): number {
    return this.#now;
  }

  /** Adds a host owning `addresses` (IP literals) besides loopback; names must be unique. */
  addHost(name: string, addresses: readonly string[] = [], options: HostOptions = {}): SimHost {
    if (this.#hosts.some((h) => h.name === name))
      throw new RangeError(`a host named ${name} exists`);
    const host = new SimHost(this.#fabric, name, addresses, options);
    this.#hosts.push(host);
    return host;
  }

  /**
   * Links two hosts (both ways, the same options). Throws a RangeError for a host linked to
   * itself or twice, a probability outside 0 to 1, a negative delay or an MTU below 68.
   */
  link(a: SimHost, b: SimHost, options: LinkOptions = {}): void {
    if (a === b || this.#links.some((l) => (l.a === a && l.b === b) || (l.a === b && l.b === a)))
      throw new RangeError(`${a.name} and ${b.name} cannot be linked (the same host, or linked)`);
    const latencyMs = options.latencyMs ?? 1;
    const link: Link = {
      a,
      b,
      latencyMs,
      mtu: options.mtu ?? 1500,
      loss: options.loss ?? 0,
      duplicate: options.duplicate ?? 0,
      reorder: options.reorder ?? 0,
      reorderMs: options.reorderMs ?? latencyMs,
      corrupt: options.corrupt ?? 0,
      random: this.#random.fork(),
    };
    for (const p of [link.loss, link.duplicate, link.reorder, link.corrupt])
      if (!(p >= 0 && p <= 1)) throw new RangeError(`a probability is 0 to 1, got ${p}`);
    if (!(latencyMs >= 0 && link.reorderMs >= 0) || !(link.mtu >= 68))
      throw new RangeError(
        `bad link: latency ${latencyMs} ms, hold-back ${link.reorderMs} ms, MTU ${link.mtu}`,
      );
    this.#links.push(link);
  }

  /** When the next datagram on a link lands (+Infinity when none is on its way). */
  nextArrival(): number {
    return this.#inFlight.peek()?.at ?? Number.POSITIVE_INFINITY;
  }

  /**
   * Moves the clock to `time` (never back), landing every datagram due by then in order: each
   * goes to its socket's receive buffer or device queue, as the kernel would while nobody reads.
   */
  advanceTo(time: number): void {
    for (
      let next = this.#inFlight.peek();
      next !== undefined && next.at <= time;
      next = this.#inFlight.peek()
    ) {
      this.#inFlight.pop();
      this.#now = Math.max(this.#now, next.at);
      next.host.receive(next.from, next.to, next.data);
    }
    this.#now = Math.max(this.#now, time);
  }

  /** A copy of the counters. */
  stats(): SimNetworkStats {
    return { ...this.#stats };
  }

  #trace(what: string): void {
    this.onTrace?.(`${this.#now.toFixed(3)} ${what}`);
  }

  /** Puts a datagram on the link from `host` toward `to`, its faults drawn; false without one. */
  #forward(host: SimHost, from: SocketAddr, to: SocketAddr, data: Uint8Array): boolean {
    const link = this.#links.find(
      (l) => (l.a === host && l.b.routes(to)) || (l.b === host && l.a.routes(to)),
    );
    if (link === undefined) return false;
    const peer = link.a === host ? link.b : link.a;
    const r = link.random;
    const what = `${host.name}>${peer.name} ${describeFlow(from, to, data.length)}`;
    this.#stats.sent++;
    // each fragment is lost on its own; one lost fragment loses the datagram
    const room =
      Math.floor((link.mtu - udpIpHeaderLength(to.family) - (to.family === 6 ? 8 : 0)) / 8) * 8;
    const size = UDP_HEADER_LENGTH + data.length;
    const fragments = size + udpIpHeaderLength(to.family) <= link.mtu ? 1 : Math.ceil(size / room);
    let lost = false;
    for (let i = 0; i < fragments; i++) lost = r.chance(link.loss) || lost;
    if (lost) {
      this.#stats.lost++;
      this.#trace(`${what} lost`);
      return true;
    }
    let bytes = data;
    if (r.chance(link.corrupt) && data.length > 0) {
      bytes = data.slice();
      const bit = r.below(data.length * 8);
      bytes[bit >>> 3] = (bytes[bit >>> 3] as number) ^ (1 << (bit & 7));
      this.#stats.corrupted++;
      this.#trace(`${what} corrupted (bit ${bit})`);
    }
    const copies = r.chance(link.duplicate) ? 2 : 1;
    if (copies === 2) {
      this.#stats.duplicated++;
      this.#trace(`${what} duplicated`);
    }
    for (let c = 0; c < copies; c++) {
      let at = this.#now + link.latencyMs;
      if (r.chance(link.reorder)) {
        const extra = r.float() * link.reorderMs;
        at += extra;
        this.#stats.reordered++;
        this.#trace(`${what} held back ${extra.toFixed(3)} ms`);
      }
      this.#inFlight.push({ at, seq: this.#seq++, host: peer, from, to, data: bytes });
    }
    return true;
  }
}

/** Datagrams on their way, earliest first (a binary heap on arrival time, then send order). */
class ArrivalQueue {
  readonly #heap: InFlight[] = [];

  peek(): InFlight | undefined {
    return this.#heap[0];
  }

  push(item: InFlight): void {
    const h = this.#heap;
    let i = h.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, h[parent] as InFlight)) break;
      h[i] = h[parent] as InFlight;
      i = parent;
    }
    h[i] = item;
  }

  pop(): void {
    const h = this.#heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const child = r < h.length && before(h[r] as InFlight, h[l] as InFlight) ? r : l;
      if (!before(h[child] as InFlight, last)) break;
      h[i] = h[child] as InFlight;
      i = child;
    }
    h[i] = last;
  }
}

function before(x: InFlight, y: InFlight): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}
