/**
 * A simulated host: its addresses, its UDP port table, its TUN devices, and the small IP stack
 * that routes a datagram to a local socket, into a device or onto a link.
 */
import { SocketAddr } from "../io/addr.ts";
import type { IoError } from "../io/events.ts";
import { decodeUdpPacket, encodeUdpPacket } from "../io/udp.ts";
import { simError } from "./errors.ts";
import { hash32 } from "./random.ts";
import { SimTun, type SimTunOptions, type TunQueue } from "./tun.ts";

/** Why the network dropped a datagram or packet that no link fault took. */
export type DropReason =
  /** No socket is bound to the destination port (address). */
  | "noListener"
  /** The socket's receive buffer or the device's queue was full. */
  | "overflow"
  /** Nothing on the host that received it leads to the destination. */
  | "unroutable"
  /** A packet written into a TUN device that is not a well-formed UDP datagram over IP. */
  | "rejected";

/** What a host needs from its network (implemented by `SimNetwork`). */
export interface Fabric {
  /**
   * Puts a datagram from `host` on the link to the host that `to` belongs to or routes into;
   * false when no link of `host` leads there. The bytes are the network's.
   */
  forward(host: SimHost, from: SocketAddr, to: SocketAddr, data: Uint8Array): boolean;
  /** Counts a datagram or packet handed to a socket or a device queue. */
  delivered(): void;
  /** Counts a drop and traces it (`what` names the datagram). */
  dropped(reason: DropReason, what: string): void;
  /** A fake file descriptor for a device queue, unique in the network. */
  newFd(): number;
}

/** A bound socket's receiving side (a `SimBackend` socket). */
export interface SimEndpoint {
  /** Takes a datagram (the bytes become the endpoint's); false when its buffer is full (dropped). */
  deliver(from: SocketAddr, data: Uint8Array): boolean;
}

/** A socket's place in its host's port table. */
export interface SimBinding {
  /** The bound address, port 0 resolved. */
  readonly local: SocketAddr;
  /** Frees the port. */
  release(): void;
}

/** How to make a host (`SimNetwork.addHost`). */
export interface HostOptions {
  /** Bytes each socket's receive buffer holds (each datagram counts its size + 256); default 212,992. */
  readonly socketBuffer?: number;
}

interface Entry {
  readonly family: 4 | 6;
  /** The bound address, or undefined for the wildcard. */
  readonly ip: string | undefined;
  readonly reusePort: boolean;
  readonly endpoint: SimEndpoint;
}

const LOOPBACK4 = SocketAddr.parse("127.0.0.1", 0);
const FIRST_EPHEMERAL = 32768;
const LAST_EPHEMERAL = 60999;

/** "1.2.3.4:5>6.7.8.9:10 64B": a datagram in traces. */
export function describeFlow(from: SocketAddr, to: SocketAddr, bytes: number): string {
  return `${from}>${to} ${bytes}B`;
}

/**
 * A simulated host.
 *
 * Contract: it owns its `addresses`, the loopback addresses (127.0.0.0/8, ::1) and the addresses
 * of its TUN devices. Binding follows Linux for UDP: port 0 takes a free ephemeral port (32768
 * upward, in order), a specific address must be the host's (`EADDRNOTAVAIL`), two sockets on one
 * family and port with overlapping addresses conflict (`EADDRINUSE`) unless both asked for
 * `reusePort`, which spreads datagrams over the group by a hash of the source address. IPv4 and
 * IPv6 sockets are separate (no dual-stack). A datagram goes to a local socket (no link, no
 * faults), into a TUN device whose subnet holds the destination, or over the link to the host
 * that owns (or routes into a device) the destination; nothing else is routable (`ENETUNREACH`).
 * A socket bound to the wildcard sends from the loopback or destination address locally, from a
 * device's address into it, and from the host's first address of the family over a link; one
 * bound to a loopback address cannot send elsewhere (`EINVAL`).
 */
export class SimHost {
  /** The name given, for traces. */
  readonly name: string;
  /** The addresses given (besides loopback). */
  readonly addresses: readonly string[];
  /** Receive buffer bytes per socket. */
  readonly socketBuffer: number;
  readonly #fabric: Fabric;
  readonly #ports = new Map<string, Entry[]>();
  readonly #nextPort = { 4: FIRST_EPHEMERAL, 6: FIRST_EPHEMERAL };
  readonly #tuns: SimTun[] = [];
  /** `addresses` parsed (port 0). */
  readonly #own: readonly SocketAddr[];

  /** Made by `SimNetwork.addHost`. Throws a RangeError for an address that is not an IP literal. */
  constructor(fabric: Fabric, name: string, addresses: readonly string[], options: HostOptions) {
    this.#fabric = fabric;
    this.name = name;
    this.#own = addresses.map((a) => SocketAddr.parse(a, 0));
    this.addresses = this.#own.map((a) => a.address);
    this.socketBuffer = options.socketBuffer ?? 212_992;
  }

  /** True for an address this host owns (see the class comment). */
  owns(address: SocketAddr): boolean {
    const text = address.address;
    return (
      isLoopback(address) ||
      this.addresses.includes(text) ||
      this.#tuns.some((t) => !t.deleted && t.address === text)
    );
  }

  /** True when a datagram to `to` ends on this host: it owns the address or routes it into a device. */
  routes(to: SocketAddr): boolean {
    return this.owns(to) || this.#tunFor(to) !== undefined;
  }

  /** Adds a TUN device (see `SimTun`). */
  addTun(options: SimTunOptions): SimTun {
    const tun = new SimTun(this, this.#fabric, options);
    this.#tuns.push(tun);
    return tun;
  }

  /** The queue of one of this host's devices with file descriptor `fd`, deleted ones included. */
  tunQueue(fd: number): TunQueue | undefined {
    for (const t of this.#tuns) {
      const q = t.queue(fd);
      if (q !== undefined) return q;
    }
    return undefined;
  }

  /** Binds a UDP socket at `addr` (see the class comment), or says why it cannot. */
  bind(addr: SocketAddr, reusePort: boolean, endpoint: SimEndpoint): SimBinding | IoError {
    const family = addr.family;
    const ip = isUnspecified(addr) ? undefined : addr.address;
    if (ip !== undefined && !this.owns(addr)) return simError("EADDRNOTAVAIL");
    const port = addr.port === 0 ? this.#ephemeral(family) : addr.port;
    const key = `${family}:${port}`;
    const entries = this.#ports.get(key) ?? [];
    const clash = entries.some(
      (e) => (e.ip === undefined || ip === undefined || e.ip === ip) && !(e.reusePort && reusePort),
    );
    if (port === 0 || clash) return simError("EADDRINUSE");
    const entry: Entry = { family, ip, reusePort, endpoint };
    entries.push(entry);
    this.#ports.set(key, entries);
    const local = addr.copy();
    new DataView(local.raw.buffer).setUint16(2, port);
    return {
      local,
      release: () => {
        entries.splice(entries.indexOf(entry), 1);
        if (entries.length === 0) this.#ports.delete(key);
      },
    };
  }

  /**
   * Sends a datagram from a socket bound at `local` to `to` (the bytes become the network's):
   * undefined once it is on its way, or the error the send gets (`EAFNOSUPPORT`, `EINVAL`,
   * `ENETUNREACH`).
   */
  send(local: SocketAddr, to: SocketAddr, data: Uint8Array): IoError | undefined {
    if (to.family !== local.family) return simError("EAFNOSUPPORT");
    const wildcard = isUnspecified(local);
    const from = (address: SocketAddr) => SocketAddr.fromIp(address.ip, local.port);
    if (!this.owns(to) && isLoopback(local)) return simError("EINVAL"); // as Linux: no loopback source outside
    if (this.owns(to)) {
      const source = isLoopback(to) && to.family === 4 ? LOOPBACK4 : to;
      this.#land(wildcard ? from(source) : local, to, data);
      return undefined;
    }
    const tun = this.#tunFor(to);
    if (tun !== undefined) {
      tun.inject(
        encodeUdpPacket(wildcard ? from(SocketAddr.parse(tun.address, 0)) : local, to, data),
      );
      return undefined;
    }
    const own = this.#own.find((a) => a.family === to.family);
    const source = wildcard && own !== undefined ? from(own) : local;
    if (isUnspecified(source) || !this.#fabric.forward(this, source, to, data))
      return simError("ENETUNREACH");
    return undefined;
  }

  /** A datagram that arrived over a link: to a local socket or into a device, else dropped. */
  receive(from: SocketAddr, to: SocketAddr, data: Uint8Array): void {
    if (this.owns(to)) this.#land(from, to, data);
    else {
      const tun = this.#tunFor(to);
      if (tun === undefined)
        this.#fabric.dropped("unroutable", describeFlow(from, to, data.length));
      else tun.inject(encodeUdpPacket(from, to, data));
    }
  }

  /**
   * A packet written into one of this host's devices: a UDP datagram goes where its destination
   * says (a local socket, a device, a link), keeping its source; anything else is dropped.
   */
  routePacket(packet: Uint8Array, what: string): void {
    const d = decodeUdpPacket(packet);
    if (typeof d === "string") {
      this.#fabric.dropped("rejected", `${what} (${d})`);
      return;
    }
    const data = d.payload.slice();
    if (this.routes(d.to)) this.receive(d.from, d.to, data);
    else if (!this.#fabric.forward(this, d.from, d.to, data))
      this.#fabric.dropped("unroutable", describeFlow(d.from, d.to, data.length));
  }

  /** Hands a datagram to the socket bound to its destination, or drops it. */
  #land(from: SocketAddr, to: SocketAddr, data: Uint8Array): void {
    const entries = this.#ports.get(`${to.family}:${to.port}`) ?? [];
    const exact = entries.filter((e) => e.ip === to.address);
    const group = exact.length > 0 ? exact : entries.filter((e) => e.ip === undefined);
    const what = describeFlow(from, to, data.length);
    if (group.length === 0) this.#fabric.dropped("noListener", what);
    else {
      const entry = group[hash32(from.raw.subarray(0, 24)) % group.length] as Entry;
      if (entry.endpoint.deliver(from, data)) this.#fabric.delivered();
      else this.#fabric.dropped("overflow", what);
    }
  }

  #tunFor(to: SocketAddr): SimTun | undefined {
    return this.#tuns.find((t) => t.contains(to));
  }

  /** The next free ephemeral port of `family` (in order, wrapping), or 0 when none is free. */
  #ephemeral(family: 4 | 6): number {
    for (let tries = FIRST_EPHEMERAL; tries <= LAST_EPHEMERAL; tries++) {
      const port = this.#nextPort[family];
      this.#nextPort[family] = port === LAST_EPHEMERAL ? FIRST_EPHEMERAL : port + 1;
      if (!this.#ports.has(`${family}:${port}`)) return port;
    }
    return 0;
  }
}

function isLoopback(a: SocketAddr): boolean {
  return a.family === 4 ? a.ip[0] === 127 : a.address === "::1";
}

function isUnspecified(a: SocketAddr): boolean {
  return a.ip.every((b) => b === 0);
}
