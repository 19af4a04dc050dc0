import { ADDR_BYTES, SocketAddr } from "../io/addr.ts";
import type { IoError, NetAction, NetEvent } from "../io/events.ts";
import { ioError } from "../sys/errno.ts";
import { native } from "../sys/native.ts";
import {
  ETHERNET_HEADER_LENGTH,
  EthernetFrame,
  EtherType,
  type IpPacket,
  Ipv4Packet,
  Ipv6Packet,
  ipVersion,
} from "../wire/index.ts";
import {
  type ActionHandler,
  datagramSizeError,
  deviceIdInUse,
  deviceNotBound,
  dispatchAction,
  packetSizeError,
  socketIdInUse,
  socketNotOpen,
} from "./actions.ts";
import { type BackendOptions, type BackendStats, type EventSink, zeroStats } from "./backend.ts";
import type { TcpTable } from "./tcp.ts";

/** One open socket or bound TUN/TAP queue of a backend. */
export interface Sock {
  /** A UDP socket (the backend's own fd) or a TUN/TAP queue (a borrowed fd, never closed here). */
  readonly kind: "udp" | "tun";
  /** A TAP queue (Ethernet frames) rather than TUN (IP packets) or UDP. */
  readonly tap: boolean;
  /** Index in the backend's socket table (used in io_uring user data and epoll tokens). */
  readonly index: number;
  /** The id the task chose (a socket id or a device id, depending on `kind`). */
  readonly id: number;
  /** Who receives its events. */
  readonly owner: number;
  readonly fd: number;
  /** "open", or "closing" after unlisten / unbind (no more packets are delivered). */
  state: "open" | "closing";
  /** Sends handed to the kernel and not yet completed. */
  inFlight: number;
  /** UDP: the kernel's drop count for this socket when last read (`BackendStats.kernelDrops`). */
  drops: number;
  /** TUN/TAP: the interface index of the queue's device, or -1 when it could not be read. */
  ifindex: number;
}

/** A TUN/TAP device with queues bound here: its `tx_dropped` at the first bind and last read. */
interface DeviceDrops {
  readonly base: number;
  last: number;
  queues: number;
}

/** A packet event the backend fills anew for each datagram or packet it delivers. */
type Reused<K extends "udp-packet" | "tun-packet"> = {
  -readonly [F in keyof Extract<NetEvent, { kind: K }>]: Extract<NetEvent, { kind: K }>[F];
};

const IFF_TAP = 2;

/**
 * The real size of a TUN/TAP packet that filled its receive buffer (`length` bytes read; the
 * kernel cuts longer packets silently): what its IP header declares, or -1 when the header does
 * not say (not IP, cut inside the header, or with lengths no IP header can have). Read through
 * the wire layer's views (`IpPacket.checkHeader`).
 */
export function declaredPacketSize(data: Uint8Array, tap: boolean): number {
  let at = 0;
  if (tap) {
    const frame = new EthernetFrame(data);
    if (frame.check() !== undefined) return -1;
    if (frame.etherType !== EtherType.Ipv4 && frame.etherType !== EtherType.Ipv6) return -1;
    at = ETHERNET_HEADER_LENGTH;
  }
  const ip: IpPacket =
    ipVersion(data, at) === 4 ? new Ipv4Packet(data, at) : new Ipv6Packet(data, at);
  return ip.checkHeader() === undefined ? at + ip.totalLength : -1;
}

/**
 * What both backends share: the socket table (UDP sockets and bound TUN/TAP queues), binding,
 * queued events, and turning every send action into single datagrams or packets. Subclasses
 * supply the kernel side.
 */
export abstract class SocketTable {
  protected readonly sink: EventSink;
  protected readonly counters: BackendStats = zeroStats();
  protected readonly sendQueueLimit: number;
  /** TCP listeners and connections (set by the subclass). */
  protected tcp: TcpTable | undefined;
  /** Sockets by index; a closed socket leaves `undefined`. */
  protected readonly socks: (Sock | undefined)[] = [];
  readonly #byId = new Map<number, Sock>();
  readonly #tunById = new Map<number, Sock>();
  readonly #queued: [number, NetEvent][] = [];
  readonly #bound = new Uint8Array(ADDR_BYTES);
  /** Devices with bound queues, by interface index. */
  readonly #devices = new Map<number, DeviceDrops>();
  readonly #deviceRead = new BigUint64Array(2); // sio_tun_drops: interface index, tx_dropped
  /** Kernel drops of sockets closed and devices unbound since creation. */
  #closedDrops = 0;
  readonly #udpPacket: Reused<"udp-packet"> = {
    kind: "udp-packet",
    socket: 0,
    from: SocketAddr.parse("0.0.0.0", 0),
    data: new Uint8Array(0),
    size: 0,
    truncated: false,
  };
  readonly #tunPacket: Reused<"tun-packet"> = {
    kind: "tun-packet",
    device: 0,
    data: new Uint8Array(0),
    size: 0,
    truncated: false,
  };

  constructor(options: BackendOptions) {
    this.sink = options.onEvent;
    this.sendQueueLimit = options.sendQueueLimit ?? 65536;
  }

  /** See `Backend.act`. */
  act(owner: number, action: NetAction): void {
    dispatchAction(this.#actions, owner, action);
  }

  readonly #actions: ActionHandler = {
    listen: (owner, socket, bind, reuseAddr, reusePort) =>
      this.#listen(owner, socket, bind, reuseAddr, reusePort),
    unlisten: (owner, socket, notOpen) => this.#close(owner, this.#byId.get(socket), notOpen),
    send: (owner, socket, to, data) => this.#send(owner, socket, to, data),
    bind: (owner, device, fd) => this.#bind(owner, device, fd),
    unbind: (owner, device, notBound) => this.#close(owner, this.#tunById.get(device), notBound),
    write: (owner, device, data) => this.#write(owner, device, data),
    tcp: (owner, action) => this.tcp?.act(owner, action),
  };

  /** See `Backend.stats`. */
  stats(): BackendStats {
    let kernelDrops = this.#closedDrops;
    for (const sock of this.openSocks()) {
      this.#readDrops(sock);
      if (sock.kind === "udp") kernelDrops += sock.drops;
    }
    for (const device of this.#devices.values()) kernelDrops += device.last - device.base;
    return {
      ...this.counters,
      ...this.tcp?.stats(),
      sockets: this.#byId.size + this.#tunById.size,
      kernelDrops,
    };
  }

  /** Queues an event for delivery at the start of the next poll (never re-enters the sink). */
  protected queue(owner: number, event: NetEvent): void {
    this.#queued.push([owner, event]);
  }

  /** True when queued events are waiting (poll must not block). */
  protected hasQueued(): boolean {
    return this.#queued.length > 0;
  }

  /** Delivers queued events; returns how many. */
  protected deliverQueued(): number {
    if (this.#queued.length === 0) return 0;
    const events = this.#queued.splice(0);
    for (const [owner, event] of events) this.sink(owner, event);
    this.counters.eventsIn += events.length;
    return events.length;
  }

  /**
   * Removes a socket or queue whose close has completed and reports it (`udp-closed` or
   * `tun-unbound`); a socket's fd is closed, a queue's borrowed fd is left to its owner.
   */
  protected finishClose(sock: Sock, error?: IoError): void {
    if (this.socks[sock.index] !== sock) return;
    this.socks[sock.index] = undefined;
    const extra = error === undefined ? {} : { error };
    this.#readDrops(sock); // its last count stays in kernelDrops
    if (sock.kind === "udp") {
      this.#byId.delete(sock.id);
      this.#closedDrops += sock.drops;
      native().sio_close(sock.fd);
      this.queue(sock.owner, { kind: "udp-closed", socket: sock.id, ...extra });
    } else {
      this.#tunById.delete(sock.id);
      const device = this.#devices.get(sock.ifindex);
      if (device !== undefined && --device.queues === 0) {
        this.#closedDrops += device.last - device.base;
        this.#devices.delete(sock.ifindex);
      }
      this.queue(sock.owner, { kind: "tun-unbound", device: sock.id, ...extra });
    }
  }

  /** Counts a failed send or write and reports it to its owner (`udp-send-error` / `tun-send-error`). */
  protected sendFailed(sock: Sock, error: IoError): void {
    this.counters.sendErrors++;
    this.queue(
      sock.owner,
      sock.kind === "udp"
        ? { kind: "udp-send-error", socket: sock.id, error }
        : { kind: "tun-send-error", device: sock.id, error },
    );
  }

  /**
   * The event for a datagram received on `sock` (`size` bytes, of which `data` holds the first
   * ones when `truncated`), counted. The same object is refilled for every datagram.
   */
  protected udpPacket(
    sock: Sock,
    from: SocketAddr,
    data: Uint8Array,
    size: number,
    truncated: boolean,
  ): NetEvent {
    if (truncated) this.counters.truncated++;
    this.counters.eventsIn++;
    const e = this.#udpPacket;
    e.socket = sock.id;
    e.from = from;
    e.data = data;
    e.size = size;
    e.truncated = truncated;
    return e;
  }

  /**
   * The event for `data`, a packet read from a TUN/TAP queue into a buffer of `bufferSize` bytes,
   * counted (the same object is refilled for every packet). The kernel cuts a longer packet to
   * the buffer silently, so a packet that fills its buffer is checked against its IP header:
   * truncated when the header declares more (`size` says how much) or cannot tell.
   */
  protected tunPacket(sock: Sock, data: Uint8Array, bufferSize: number): NetEvent {
    let size = data.length;
    let truncated = false;
    if (size >= bufferSize) {
      const declared = declaredPacketSize(data, sock.tap);
      truncated = declared !== size;
      if (declared > size) size = declared;
      if (truncated) this.counters.truncated++;
    }
    this.counters.eventsIn++;
    const e = this.#tunPacket;
    e.device = sock.id;
    e.data = data;
    e.size = size;
    e.truncated = truncated;
    return e;
  }

  /** Every socket still in the table. */
  protected openSocks(): Sock[] {
    return this.socks.filter((s): s is Sock => s !== undefined);
  }

  /** Starts receiving on a newly bound socket. */
  protected abstract armReceive(sock: Sock): void;
  /** Begins closing: stop receiving, then `finishClose` once nothing is in flight. */
  protected abstract startClose(sock: Sock): void;
  /** Sends one datagram (the data may be a receive-buffer view: valid only during this call). */
  protected abstract sendOne(sock: Sock, to: SocketAddr, data: Uint8Array): void;
  /** Writes one packet into a TUN/TAP queue (the data may be a receive-buffer view, as above). */
  protected abstract writePacket(sock: Sock, data: Uint8Array): void;

  #listen(
    owner: number,
    id: number,
    bind: SocketAddr,
    reuseAddr: boolean,
    reusePort: boolean,
  ): void {
    if (this.#byId.has(id)) {
      this.queue(owner, {
        kind: "udp-listen-result",
        socket: id,
        error: socketIdInUse(id),
      });
      return;
    }
    const fd = native().sio_udp_bind(
      bind.raw,
      reuseAddr ? 1 : 0,
      reusePort ? 1 : 0,
      0,
      0,
      this.#bound,
    );
    if (fd < 0) {
      this.queue(owner, { kind: "udp-listen-result", socket: id, error: ioError(fd) });
      return;
    }
    const sock = this.#add("udp", id, owner, fd);
    this.#byId.set(id, sock);
    this.queue(owner, {
      kind: "udp-listen-result",
      socket: id,
      local: new SocketAddr(this.#bound.slice()),
    });
    this.armReceive(sock);
  }

  /** Starts closing `sock`, or reports `notOpen` when there is no open socket to close. */
  #close(owner: number, sock: Sock | undefined, notOpen: NetEvent): void {
    if (sock === undefined || sock.state !== "open") {
      this.queue(owner, notOpen);
      return;
    }
    sock.state = "closing";
    this.startClose(sock);
  }

  #add(kind: Sock["kind"], id: number, owner: number, fd: number, tap = false): Sock {
    let index = this.socks.indexOf(undefined);
    if (index < 0) index = this.socks.length;
    const sock: Sock = {
      kind,
      tap,
      index,
      id,
      owner,
      fd,
      state: "open",
      inFlight: 0,
      drops: 0,
      ifindex: -1,
    };
    this.socks[index] = sock;
    return sock;
  }

  /**
   * Reads the kernel's drop count of a UDP socket, or the `tx_dropped` of a TUN/TAP queue's
   * device (the queue's first read finds the device and, for its first queue, the baseline).
   * A count that cannot be read (a device deleted under its queue) keeps its last value.
   */
  #readDrops(sock: Sock): void {
    if (sock.kind === "udp") {
      const drops = Number(native().sio_udp_drops(sock.fd));
      if (drops >= 0) sock.drops = drops;
      return;
    }
    const out = this.#deviceRead;
    if (native().sio_tun_drops(sock.fd, out) < 0) return;
    const ifindex = Number(out[0]);
    const txDropped = Number(out[1]);
    if (sock.ifindex === -1) {
      sock.ifindex = ifindex;
      const known = this.#devices.get(ifindex);
      if (known === undefined)
        this.#devices.set(ifindex, { base: txDropped, last: txDropped, queues: 1 });
      else known.queues++;
    }
    const device = this.#devices.get(sock.ifindex);
    if (device !== undefined && ifindex === sock.ifindex) device.last = txDropped;
  }

  #bind(owner: number, id: number, fd: number): void {
    const checked = this.#checkBind(id, fd);
    if (typeof checked !== "number") {
      this.queue(owner, { kind: "tun-bind-result", device: id, error: checked });
      return;
    }
    const sock = this.#add("tun", id, owner, fd, checked === IFF_TAP);
    this.#tunById.set(id, sock);
    this.#readDrops(sock); // the device's drops count from here
    this.queue(owner, { kind: "tun-bind-result", device: id });
    this.armReceive(sock);
  }

  /** What kind of queue `fd` is (IFF_TUN or IFF_TAP), or why device `id` cannot be bound to it. */
  #checkBind(id: number, fd: number): number | IoError {
    if (this.#tunById.has(id)) return deviceIdInUse(id);
    for (const other of this.#tunById.values()) {
      if (other.fd === fd) {
        return { code: "EEXIST", message: `fd ${fd} is already bound as device ${other.id}` };
      }
    }
    const r = Number.isInteger(fd) && fd >= 0 ? native().sio_tun_check(fd) : -9; // EBADF
    if (r >= 0) return r;
    const e = ioError(r);
    const notTun = e.code === "ENOTTY" || e.code === "EINVAL" || e.code === "EBADFD";
    const message =
      e.code === "EPROTOTYPE"
        ? `fd ${fd} is a TUN/TAP queue with a packet-information or virtio-net header; the backends take bare packets (IFF_NO_PI, as TunDevice makes)`
        : notTun
          ? `fd ${fd} is not an attached TUN/TAP queue (use one of TunDevice.queues)`
          : `fd ${fd}: ${e.message}`;
    return { code: e.code, message };
  }

  #write(owner: number, id: number, data: Uint8Array): void {
    const sock = this.#tunById.get(id);
    if (sock === undefined || sock.state !== "open") {
      this.counters.sendErrors++;
      this.queue(owner, { kind: "tun-send-error", device: id, error: deviceNotBound(id) });
      return;
    }
    const tooLarge = packetSizeError(data.length);
    if (tooLarge !== undefined) {
      this.sendFailed(sock, tooLarge);
      return;
    }
    this.writePacket(sock, data);
  }

  #send(owner: number, id: number, to: SocketAddr, data: Uint8Array): void {
    const sock = this.#byId.get(id);
    if (sock === undefined || sock.state !== "open") {
      this.counters.sendErrors++;
      this.queue(owner, { kind: "udp-send-error", socket: id, error: socketNotOpen(id) });
      return;
    }
    const tooLarge = datagramSizeError(to, data.length);
    if (tooLarge !== undefined) {
      this.sendFailed(sock, tooLarge);
      return;
    }
    this.sendOne(sock, to, data);
  }
}
