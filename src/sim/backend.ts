/** `SimBackend`: the `Backend` contract over a simulated host, on the network's virtual clock. */

import {
  type ActionHandler,
  datagramSizeError,
  deviceIdInUse,
  deviceNotBound,
  dispatchAction,
  packetSizeError,
  socketIdInUse,
  socketNotOpen,
} from "../backend/actions.ts";
import {
  type Backend,
  type BackendOptions,
  type BackendStats,
  type EventSink,
  zeroStats,
} from "../backend/backend.ts";
import { PayloadKeptError } from "../backend/payload-guard.ts";
import { tcpRefusal } from "../backend/tcp.ts";
import { SocketAddr } from "../io/addr.ts";
import { AddressBook } from "../io/addr-book.ts";
import type { IoError, NetAction, NetEvent } from "../io/events.ts";
import { simError } from "./errors.ts";
import type { SimBinding, SimHost } from "./host.ts";
import type { SimNetwork } from "./network.ts";
import type { TunQueue } from "./tun.ts";

/** Bytes of receive buffer in front of each datagram (io_uring's headers: the same cut-off). */
const UDP_HEADROOM = 44;
/** What a socket's receive buffer counts per datagram besides its bytes. */
const DATAGRAM_OVERHEAD = 256;
/** What delivered bytes are overwritten with once the sink returns. */
const POISON = 0xdd;

interface Sock {
  readonly kind: "udp";
  readonly id: number;
  readonly owner: number;
  readonly local: SocketAddr;
  readonly binding: SimBinding;
  state: "open" | "closing";
  /** Bytes waiting in its receive buffer (with the per-datagram overhead). */
  queued: number;
  /** Datagrams its full receive buffer dropped. */
  drops: number;
}

interface Device {
  readonly kind: "tun";
  readonly id: number;
  readonly owner: number;
  readonly queue: TunQueue;
  state: "open" | "closing";
  /** The queue's drops when it was bound. */
  readonly dropsAtBind: number;
}

/** Work `act` queued for the next poll, carried out in order. */
type Op =
  | { readonly op: "event"; readonly owner: number; readonly event: NetEvent }
  | {
      readonly op: "send";
      readonly sock: Sock;
      readonly to: SocketAddr;
      readonly data: Uint8Array;
      readonly zeroCopy: boolean;
    }
  | {
      readonly op: "write";
      readonly device: Device;
      readonly data: Uint8Array;
      readonly zeroCopy: boolean;
    }
  | { readonly op: "close"; readonly target: Sock | Device };

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
/** What every TCP action is answered with here. */
const SIM_NO_TCP: IoError = {
  code: "EOPNOTSUPP",
  message: "the simulated network has no TCP yet: test TCP tasks on the uring or epoll backend",
};

type UdpPacket = Mutable<Extract<NetEvent, { kind: "udp-packet" }>>;
type TunPacket = Mutable<Extract<NetEvent, { kind: "tun-packet" }>>;

/**
 * A backend on a simulated host: UDP sockets and TUN queues with the real backends' events and
 * errors, data moved in memory by the host's `SimNetwork`.
 *
 * Contract (as `Backend`, with these specifics): `act` checks what it can at once (a socket id
 * in use `EEXIST`, a send on a socket not open `EBADF`, a datagram larger than UDP allows
 * `EMSGSIZE`; a bind takes its port at once: `EADDRINUSE`, `EADDRNOTAVAIL`) and copies the data
 * it is given; `poll` carries out what was acted, in order (sends leave, `ENETUNREACH` or
 * `EAFNOSUPPORT` come back as `udp-send-error`, closes finish with `udp-closed`), then delivers
 * what arrived, datagrams in arrival order, then each bound queue's packets. With nothing to
 * deliver it moves the network's clock to the next arrival, up to `timeoutMs` later (negative:
 * with nothing on its way it returns 0 at once, as nothing else can run meanwhile). A datagram
 * gets `recvBufferSize - 44` bytes, a TUN packet `recvBufferSize`: longer ones arrive cut,
 * flagged `truncated`, with their real `size`. The contract's lifetime rule is enforced: once
 * the sink returns, the bytes it was given are overwritten (0xDD) and the source address zeroed,
 * so a task that keeps a view without copying fails here every time, not once in a while.
 * Sending such a view inside the sink counts as a zero-copy send. Receive buffers never run out
 * (`bufferExhaustion` stays 0: inject it with `withFaults`) and sends never wait (`sendQueued`,
 * `sendDrops` stay 0); `kernelDrops` counts datagrams a full socket buffer dropped and packets a
 * full bound queue dropped. `recvBuffers` and `sendQueueLimit` are accepted and ignored.
 * It sends each datagram on its own (no GSO), and `wakeHandle` is -1: nothing can wake a
 * simulated backend from another thread.
 */
export class SimBackend implements Backend {
  /** The simulated network's backend. */
  readonly kind = "sim";
  /** See the class comment. */
  readonly wakeHandle = -1;
  /** The host this backend's sockets live on. */
  readonly host: SimHost;
  readonly #network: SimNetwork;
  readonly #sink: EventSink;
  readonly #counters: BackendStats = zeroStats();
  readonly #socks = new Map<number, Sock>();
  readonly #devices = new Map<number, Device>();
  readonly #ops: Op[] = [];
  /** Datagrams in the sockets' receive buffers, in arrival order. */
  readonly #received: {
    readonly sock: Sock;
    readonly from: SocketAddr;
    readonly data: Uint8Array;
  }[] = [];
  readonly #arena: Uint8Array;
  /** Source addresses as values, as the kernel backends give them. */
  readonly #addrs = new AddressBook();
  readonly #udp: UdpPacket;
  readonly #tun: TunPacket;
  #closedDrops = 0;
  /** True while a packet's handler runs (its payload may be sent without a copy). */
  #handling = false;
  #closed = false;

  /** A backend on `host` of `network`. Throws a RangeError for a `recvBufferSize` below 256. */
  constructor(network: SimNetwork, host: SimHost, options: BackendOptions) {
    const size = options.recvBufferSize ?? 2048;
    if (!(size >= 256)) throw new RangeError(`recvBufferSize must be at least 256, got ${size}`);
    this.#network = network;
    this.host = host;
    this.#sink = options.onEvent;
    this.#arena = new Uint8Array(size);
    const empty = this.#arena.subarray(0, 0);
    this.#udp = {
      kind: "udp-packet",
      socket: 0,
      from: SocketAddr.parse("0.0.0.0", 0),
      data: empty,
      size: 0,
      truncated: false,
    };
    this.#tun = { kind: "tun-packet", device: 0, data: empty, size: 0, truncated: false };
  }

  /** See `Backend.act` and the class comment. */
  act(owner: number, action: NetAction): void {
    if (!this.#closed) dispatchAction(this.#actions, owner, action);
  }

  /**
   * True when `data` is a view of the receive arena (sent without a copy); throws a
   * `PayloadKeptError` for one kept past its handler (as `PayloadGuard` does on a real backend).
   */
  #zeroCopy(data: Uint8Array): boolean {
    if (data.buffer !== this.#arena.buffer) return false;
    if (this.#handling) return true;
    throw PayloadKeptError.sent();
  }

  readonly #actions: ActionHandler = {
    listen: (owner, socket, bind, _reuseAddr, reusePort) =>
      this.#listen(owner, socket, bind, reusePort),
    unlisten: (owner, socket, notOpen) => this.#close(owner, this.#socks.get(socket), notOpen),
    send: (owner, socket, to, data) => this.#send(owner, socket, to, data),
    bind: (owner, device, fd) => this.#bind(owner, device, fd),
    unbind: (owner, device, notBound) => this.#close(owner, this.#devices.get(device), notBound),
    write: (owner, device, data) => this.#write(owner, device, data),
    tcp: (owner, action) => {
      const refusal = tcpRefusal(action, SIM_NO_TCP);
      if (refusal !== undefined) this.#event(owner, refusal);
    },
  };

  /** See `Backend.poll` and the class comment. */
  poll(timeoutMs: number): number {
    if (this.#closed) return 0;
    this.#counters.submits++;
    let delivered = 0;
    for (const op of this.#ops.splice(0)) delivered += this.#carryOut(op);
    this.#network.advanceTo(this.#network.now); // what is due now (sent over links without delay)
    delivered += this.#deliverReceived();
    if (delivered > 0 || timeoutMs === 0) return delivered;
    const network = this.#network;
    const deadline = timeoutMs < 0 ? Number.POSITIVE_INFINITY : network.now + timeoutMs;
    for (;;) {
      const next = Math.min(network.nextArrival(), deadline);
      if (next === Number.POSITIVE_INFINITY) return 0;
      network.advanceTo(next);
      delivered = this.#deliverReceived();
      if (delivered > 0 || next >= deadline) return delivered;
    }
  }

  /** See `Backend.nextDeadline`: now while work or arrivals wait here, else the next arrival. */
  nextDeadline(): number {
    const waiting =
      this.#ops.length > 0 ||
      this.#received.length > 0 ||
      [...this.#devices.values()].some((d) => d.queue.packets.length > 0 || d.queue.device.deleted);
    return waiting ? this.#network.now : this.#network.nextArrival();
  }

  /** Releases every port and queue at once; events still waiting are not delivered. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const sock of this.#socks.values()) this.#release(sock);
    for (const device of this.#devices.values()) this.#unbind(device);
    this.#ops.length = 0;
    this.#received.length = 0;
  }

  /** See `Backend.stats` and the class comment. */
  stats(): BackendStats {
    let kernelDrops = this.#closedDrops;
    for (const sock of this.#socks.values()) kernelDrops += sock.drops;
    for (const d of this.#devices.values()) kernelDrops += d.queue.drops - d.dropsAtBind;
    return { ...this.#counters, sockets: this.#socks.size + this.#devices.size, kernelDrops };
  }

  /** Starts closing `target` (finished by the next poll), or reports `notOpen`. */
  #close(owner: number, target: Sock | Device | undefined, notOpen: NetEvent): void {
    if (target?.state === "open") {
      target.state = "closing";
      this.#ops.push({ op: "close", target });
    } else this.#event(owner, notOpen);
  }

  #event(owner: number, event: NetEvent): void {
    this.#ops.push({ op: "event", owner, event });
  }

  #listen(owner: number, id: number, bind: SocketAddr, reusePort: boolean): void {
    if (this.#socks.has(id)) {
      this.#event(owner, { kind: "udp-listen-result", socket: id, error: socketIdInUse(id) });
      return;
    }
    const endpoint = {
      deliver: (from: SocketAddr, data: Uint8Array): boolean => {
        const cost = data.length + DATAGRAM_OVERHEAD;
        if (sock.queued + cost > this.host.socketBuffer) {
          sock.drops++;
          return false;
        }
        sock.queued += cost;
        this.#received.push({ sock, from, data });
        return true;
      },
    };
    const bound = this.host.bind(bind, reusePort, endpoint);
    if (!("local" in bound)) {
      this.#event(owner, { kind: "udp-listen-result", socket: id, error: bound });
      return;
    }
    const sock: Sock = {
      kind: "udp",
      id,
      owner,
      local: bound.local,
      binding: bound,
      state: "open",
      queued: 0,
      drops: 0,
    };
    this.#socks.set(id, sock);
    this.#event(owner, { kind: "udp-listen-result", socket: id, local: bound.local.copy() });
  }

  #send(owner: number, id: number, to: SocketAddr, data: Uint8Array): void {
    const sock = this.#socks.get(id);
    const tooLarge = datagramSizeError(to, data.length);
    if (sock?.state !== "open") {
      this.#refuse(owner, { kind: "udp-send-error", socket: id, error: socketNotOpen(id) });
    } else if (tooLarge !== undefined) {
      this.#refuse(sock.owner, { kind: "udp-send-error", socket: id, error: tooLarge });
    } else {
      const zeroCopy = this.#zeroCopy(data);
      this.#ops.push({ op: "send", sock, to: to.copy(), data: data.slice(), zeroCopy });
    }
  }

  #bind(owner: number, id: number, fd: number): void {
    const queue = this.host.tunQueue(fd);
    const refuse = (error: IoError) =>
      this.#event(owner, { kind: "tun-bind-result", device: id, error });
    if (this.#devices.has(id)) refuse(deviceIdInUse(id));
    else if (queue === undefined || queue.device.deleted)
      refuse(simError("EBADF", `fd ${fd} is not an open queue of a simulated TUN device`));
    else if (queue.boundBy !== undefined) refuse(simError("EEXIST", `fd ${fd} is already bound`));
    else {
      const device: Device = {
        kind: "tun",
        id,
        owner,
        queue,
        state: "open",
        dropsAtBind: queue.drops,
      };
      queue.boundBy = device;
      this.#devices.set(id, device);
      this.#event(owner, { kind: "tun-bind-result", device: id });
    }
  }

  #write(owner: number, id: number, data: Uint8Array): void {
    const device = this.#devices.get(id);
    const tooLarge = packetSizeError(data.length);
    if (device?.state !== "open") {
      this.#refuse(owner, { kind: "tun-send-error", device: id, error: deviceNotBound(id) });
    } else if (tooLarge !== undefined) {
      this.#refuse(device.owner, { kind: "tun-send-error", device: id, error: tooLarge });
    } else {
      const zeroCopy = this.#zeroCopy(data);
      this.#ops.push({ op: "write", device, data: data.slice(), zeroCopy });
    }
  }

  /** A send or write refused by `act`: counted, reported at the next poll. */
  #refuse(owner: number, event: NetEvent): void {
    this.#counters.sendErrors++;
    this.#event(owner, event);
  }

  /** Carries out one queued operation; returns the events it delivered. */
  #carryOut(op: Op): number {
    switch (op.op) {
      case "event":
        return this.#deliver(op.owner, op.event);
      case "send": {
        const error = this.host.send(op.sock.local, op.to, op.data);
        return error === undefined
          ? this.#sent(op.zeroCopy)
          : this.#failed(op.sock.owner, { kind: "udp-send-error", socket: op.sock.id, error });
      }
      case "write": {
        const version = (op.data[0] as number) >>> 4;
        if (op.device.queue.device.deleted) return 0; // the queue ends at the next delivery
        if (version !== 4 && version !== 6) {
          const error = simError("EINVAL", "not an IP packet: a TUN device takes IPv4 or IPv6");
          return this.#failed(op.device.owner, {
            kind: "tun-send-error",
            device: op.device.id,
            error,
          });
        }
        op.device.queue.device.written(op.data);
        return this.#sent(op.zeroCopy);
      }
      case "close": {
        const t = op.target;
        if (t.kind === "udp") this.#release(t);
        else this.#unbind(t);
        const event: NetEvent =
          t.kind === "udp"
            ? { kind: "udp-closed", socket: t.id }
            : { kind: "tun-unbound", device: t.id };
        return this.#deliver(t.owner, event);
      }
    }
  }

  #sent(zeroCopy: boolean): number {
    this.#counters.packetsOut++;
    if (zeroCopy) this.#counters.zeroCopySends++;
    return 0;
  }

  #failed(owner: number, event: NetEvent): number {
    this.#counters.sendErrors++;
    return this.#deliver(owner, event);
  }

  #deliver(owner: number, event: NetEvent): number {
    this.#counters.eventsIn++;
    this.#sink(owner, event);
    return 1;
  }

  /** Delivers what arrived: datagrams in order, then each bound queue's packets; returns how many. */
  #deliverReceived(): number {
    let delivered = 0;
    for (const { sock, from, data } of this.#received.splice(0)) {
      sock.queued -= data.length + DATAGRAM_OVERHEAD;
      if (sock.state !== "open") continue;
      const e = this.#udp;
      e.socket = sock.id;
      e.from = this.#addrs.at(new DataView(from.raw.buffer, from.raw.byteOffset), 0);
      delivered += this.#deliverBytes(sock.owner, e, data, this.#arena.length - UDP_HEADROOM);
    }
    for (const device of [...this.#devices.values()]) {
      if (device.state !== "open") continue;
      if (device.queue.device.deleted) {
        this.#unbind(device);
        const error = simError(
          "EBADFD",
          "file descriptor in bad state (a TUN device deleted under its queue)",
        );
        delivered += this.#deliver(device.owner, { kind: "tun-unbound", device: device.id, error });
        continue;
      }
      const e = this.#tun;
      e.device = device.id;
      const packets = device.queue.packets;
      // one at a time: what is left when the sink unbinds stays in the queue for its next reader
      for (let n = packets.length; n > 0 && device.state === "open"; n--) {
        delivered += this.#deliverBytes(
          device.owner,
          e,
          packets.shift() as Uint8Array,
          this.#arena.length,
        );
      }
    }
    return delivered;
  }

  /** Delivers `e` with `bytes` cut to `room` in the arena, then overwrites them. */
  #deliverBytes(owner: number, e: UdpPacket | TunPacket, bytes: Uint8Array, room: number): number {
    const length = Math.min(bytes.length, room);
    this.#arena.set(bytes.subarray(0, length));
    e.data = this.#arena.subarray(0, length);
    e.size = bytes.length;
    e.truncated = length < bytes.length;
    if (e.truncated) this.#counters.truncated++;
    this.#handling = true;
    try {
      this.#deliver(owner, e);
    } finally {
      this.#handling = false;
      this.#arena.fill(POISON, 0, length);
    }
    return 1;
  }

  #release(sock: Sock): void {
    sock.binding.release();
    this.#socks.delete(sock.id);
    this.#closedDrops += sock.drops;
  }

  #unbind(device: Device): void {
    device.queue.boundBy = undefined;
    this.#devices.delete(device.id);
    this.#closedDrops += device.queue.drops - device.dropsAtBind;
  }
}
