/** Simulated TUN devices: IP packets between a simulated host's stack and a backend. */
import { parseIPv4Cidr, type SocketAddr } from "../io/addr.ts";
import type { Fabric, SimHost } from "./host.ts";
import { hash32 } from "./random.ts";

/** How to make a simulated TUN device (`SimHost.addTun`). */
export interface SimTunOptions {
  /** The device's name, for traces. */
  readonly name: string;
  /** The device's IPv4 address and subnet, "10.77.0.1/24": the host owns the address and routes the rest of the subnet into the device. */
  readonly address: string;
  /** Queues (each a file descriptor a backend binds with `tun-bind`); default 1. */
  readonly queues?: number;
  /** Packets a queue holds for its reader before it drops (the kernel's txqueuelen); default 500. */
  readonly queueLength?: number;
}

/** One queue of a simulated device: what `tun-bind` binds. */
export interface TunQueue {
  /** The fake file descriptor (one of `SimTun.queues`). */
  readonly fd: number;
  readonly device: SimTun;
  /** Packets waiting for the reader, oldest first. */
  readonly packets: Uint8Array[];
  /** Packets dropped because the queue was full. */
  drops: number;
  /** The binder (a backend's record), or undefined while unbound. */
  boundBy: object | undefined;
}

/**
 * A simulated TUN device on a host (IP packets, no packet-information header, IPv4 addressing).
 *
 * Contract: the host's stack routes datagrams for the device's subnet (other than its own
 * address) into it as IPv4/UDP packets, on the queue its flow (the address pair) hashes to, as
 * the kernel spreads flows; a full queue drops (counted in `drops` and the binding backend's
 * `kernelDrops`). What a backend writes into a queue goes to the host's stack: a UDP datagram is
 * delivered to a local socket, routed into a device or over a link; anything else is dropped and
 * counted ("rejected"). `onWrite` sees every packet written (a copy) first. After `delete()` the
 * bound queues end with `tun-unbound` (`EBADFD`) and binding its fds fails with `EBADF`.
 */
export class SimTun {
  /** The name given. */
  readonly name: string;
  /** The device's own address ("10.77.0.1"). */
  readonly address: string;
  /** The fake file descriptors of its queues, for `tun-bind`. */
  readonly queues: readonly number[];
  /** Called with a copy of every packet a backend writes into the device, before the host routes it. */
  onWrite: ((packet: Uint8Array) => void) | undefined = undefined;
  readonly #host: SimHost;
  readonly #fabric: Fabric;
  readonly #net: number;
  readonly #mask: number;
  readonly #queues: TunQueue[];
  readonly #limit: number;
  #deleted = false;

  /** Made by `SimHost.addTun`. Throws a RangeError for an address that is not IPv4 CIDR. */
  constructor(host: SimHost, fabric: Fabric, options: SimTunOptions) {
    const cidr = parseIPv4Cidr(options.address);
    if (cidr === undefined)
      throw new RangeError(`a TUN address is IPv4 with a prefix, got ${options.address}`);
    this.name = options.name;
    this.#host = host;
    this.#fabric = fabric;
    this.#mask = cidr.prefix === 0 ? 0 : (0xffffffff << (32 - cidr.prefix)) >>> 0;
    this.#net = (cidr.address & this.#mask) >>> 0;
    this.address = options.address.slice(0, options.address.indexOf("/"));
    this.#limit = options.queueLength ?? 500;
    this.#queues = Array.from({ length: options.queues ?? 1 }, () => ({
      fd: fabric.newFd(),
      device: this,
      packets: [],
      drops: 0,
      boundBy: undefined,
    }));
    this.queues = this.#queues.map((q) => q.fd);
  }

  /** True once `delete()` has run. */
  get deleted(): boolean {
    return this.#deleted;
  }

  /** True when the host routes `to` into this device: in its subnet, not its own address. */
  contains(to: SocketAddr): boolean {
    if (to.family !== 4 || this.#deleted || to.address === this.address) return false;
    const ip = to.ip;
    const n =
      (((ip[0] as number) << 24) |
        ((ip[1] as number) << 16) |
        ((ip[2] as number) << 8) |
        (ip[3] as number)) >>>
      0;
    return (n & this.#mask) >>> 0 === this.#net;
  }

  /**
   * Puts a packet into the device as the kernel would (a copy), on the queue its flow hashes to;
   * dropped and counted when that queue is full or the device is deleted.
   */
  inject(packet: Uint8Array): void {
    const what = `${this.name} ${packet.length}B`;
    if (this.#deleted) {
      this.#fabric.dropped("unroutable", what);
      return;
    }
    const v4 = packet.length >= 20 && (packet[0] as number) >>> 4 === 4;
    const flow = v4 ? packet.subarray(12, 20) : packet.subarray(8, 40);
    const queue = this.#queues[hash32(flow) % this.#queues.length] as TunQueue;
    if (queue.packets.length >= this.#limit) {
      queue.drops++;
      this.#fabric.dropped("overflow", what);
      return;
    }
    queue.packets.push(packet.slice());
    this.#fabric.delivered();
  }

  /** A packet a backend wrote into queue `fd` (the bytes are the device's). */
  written(packet: Uint8Array): void {
    this.onWrite?.(packet.slice());
    this.#host.routePacket(packet, `${this.name} ${packet.length}B`);
  }

  /** The queue with file descriptor `fd`, if it is one of this device's. */
  queue(fd: number): TunQueue | undefined {
    return this.#queues.find((q) => q.fd === fd);
  }

  /** Deletes the device (as `ip link del` would): see the class comment. */
  delete(): void {
    this.#deleted = true;
    for (const q of this.#queues) q.packets.length = 0;
  }
}
