/**
 * A pcap writer as backend middleware: every datagram and packet a backend sends or delivers,
 * written to a classic libpcap file that tcpdump and Wireshark open.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import type { SocketAddr } from "../io/addr.ts";
import type { NetAction, NetEvent } from "../io/events.ts";
import { encodeUdpPacket } from "../io/udp.ts";
import {
  ETHERNET_HEADER_LENGTH,
  EthernetFrame,
  EthernetRepr,
  EtherType,
  MAC_LENGTH,
  UDP_HEADER_LENGTH,
  udpIpHeaderLength,
} from "../wire/index.ts";
import { datagramSizeError } from "./actions.ts";
import type { EventSink } from "./backend.ts";
import { type BackendFactory, BackendMiddleware } from "./middleware.ts";

/** libpcap link types used here. */
const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;
/** The Ethernet header a UDP datagram gets in an Ethernet capture (no MAC addresses: zeros). */
const IPV4_OVER_ETHERNET = new EthernetRepr({
  destination: new Uint8Array(MAC_LENGTH),
  source: new Uint8Array(MAC_LENGTH),
  etherType: EtherType.Ipv4,
});
const IPV6_OVER_ETHERNET = new EthernetRepr({ ...IPV4_OVER_ETHERNET, etherType: EtherType.Ipv6 });
/** The largest record kept whole (what tcpdump's default snapshot length is). */
const SNAPLEN = 262144;
const FLUSH_AT = 64 * 1024;

/** How `withPcap` writes. */
export interface PcapOptions {
  /**
   * Wall-clock milliseconds since the epoch for the records' times; default the system's
   * (`performance.timeOrigin + performance.now()`). A simulation passes its network's clock.
   */
  readonly clock?: () => number;
  /**
   * What the bound devices carry: "tun" (default) IP packets, and the file is raw IP; "tap"
   * Ethernet frames, written as they are, and the file is Ethernet, UDP datagrams getting an
   * Ethernet header (zero MAC addresses).
   */
  readonly devices?: "tun" | "tap";
}

/**
 * Wraps the backend `make` makes so that what it sends and delivers is also written to a pcap
 * file at `path` (created or truncated when the backend is made; complete once it is closed).
 * Composes with other middleware: `withPcap(withFaults(make, faults), path)`.
 */
export function withPcap(
  make: BackendFactory,
  path: string,
  options: PcapOptions = {},
): BackendFactory<PcapBackend> {
  return (sink) => new PcapBackend(make, sink, path, options);
}

/**
 * A backend that records its traffic in a pcap file (made by `withPcap`).
 *
 * Contract: the inner backend's behaviour is unchanged. Written, in the order seen: each
 * datagram handed to `act` on a socket whose `udp-listen-result` it has seen open, and each
 * packet written into a device it has seen bound (both when acted: a send the backend then
 * fails is in the file too); each `udp-packet` and `tun-packet` delivered. UDP datagrams get IP
 * and UDP headers with the socket's bound address (0.0.0.0 or :: for a wildcard bind, as the
 * backend does not know the address the kernel chose) and the peer's, and valid checksums; a
 * datagram delivered truncated is recorded as captured short of its real length. Device
 * packets are written as they are. So a datagram between two sockets of one backend is in the
 * file twice, sent and received. The file is written in 64 KiB pieces and completed by `close()`.
 */
export class PcapBackend extends BackendMiddleware {
  /** Where the file is. */
  readonly path: string;
  readonly #writer: PcapWriter;
  readonly #clock: () => number;
  readonly #ethernet: boolean;
  readonly #sockets = new Map<number, SocketAddr>();
  readonly #devices = new Set<number>();

  /** Use `withPcap`. Throws what opening the file throws. */
  constructor(make: BackendFactory, sink: EventSink, path: string, options: PcapOptions) {
    super(make, sink);
    this.path = path;
    this.#ethernet = options.devices === "tap";
    this.#clock = options.clock ?? (() => performance.timeOrigin + performance.now());
    this.#writer = new PcapWriter(path, this.#ethernet ? LINKTYPE_ETHERNET : LINKTYPE_RAW);
  }

  /** Records written so far. */
  get packets(): number {
    return this.#writer.packets;
  }

  /** See the class comment. */
  override act(owner: number, action: NetAction): void {
    switch (action.kind) {
      case "udp-send":
        this.#datagram(action.socket, action.to, action.data);
        break;
      case "udp-send-many":
        for (const to of action.to) this.#datagram(action.socket, to, action.data);
        break;
      case "udp-send-batch":
        for (const p of action.packets) this.#datagram(p.socket, p.to, p.data);
        break;
      case "tun-send":
        if (this.#devices.has(action.device)) this.#write(action.data, action.data.length);
        break;
    }
    this.inner.act(owner, action);
  }

  /** Closes the inner backend, then completes the file. */
  override close(): void {
    this.inner.close();
    this.#writer.close();
  }

  protected override onEvent(owner: number, event: NetEvent): void {
    switch (event.kind) {
      case "udp-listen-result":
        if (event.local !== undefined) this.#sockets.set(event.socket, event.local);
        break;
      case "udp-closed":
        this.#sockets.delete(event.socket);
        break;
      case "tun-bind-result":
        if (event.error === undefined) this.#devices.add(event.device);
        break;
      case "tun-unbound":
        this.#devices.delete(event.device);
        break;
      case "udp-packet": {
        const local = this.#sockets.get(event.socket);
        if (local !== undefined) this.#udp(event.from, local, event.data, event.size);
        break;
      }
      case "tun-packet":
        this.#write(event.data, event.size);
        break;
    }
    this.sink(owner, event);
  }

  /** A datagram sent from `socket`, if the socket is known open and the datagram can exist. */
  #datagram(socket: number, to: SocketAddr, data: Uint8Array): void {
    const local = this.#sockets.get(socket);
    if (local !== undefined && datagramSizeError(to, data.length) === undefined)
      this.#udp(local, to, data, data.length);
  }

  /** Writes a datagram with IP and UDP headers (none when the families differ: no such packet). */
  #udp(from: SocketAddr, to: SocketAddr, data: Uint8Array, size: number): void {
    if (from.family !== to.family) return;
    const packet = encodeUdpPacket(from, to, data, size);
    const length = udpIpHeaderLength(from.family) + UDP_HEADER_LENGTH + size;
    if (!this.#ethernet) {
      this.#write(packet, length);
      return;
    }
    const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + packet.length);
    const header = from.family === 4 ? IPV4_OVER_ETHERNET : IPV6_OVER_ETHERNET;
    header.emit(new EthernetFrame(frame));
    frame.set(packet, ETHERNET_HEADER_LENGTH);
    this.#write(frame, ETHERNET_HEADER_LENGTH + length);
  }

  #write(data: Uint8Array, originalLength: number): void {
    this.#writer.write(this.#clock(), data, originalLength);
  }
}

/**
 * A classic libpcap file (version 2.4, microsecond times, little-endian, snapshot length
 * 262,144) of one link type, written through a 64 KiB buffer.
 *
 * Contract: the file is created (or truncated) by the constructor; `write` appends one record;
 * `close` writes what is buffered and closes the file (later writes throw). A record longer
 * than the snapshot length is cut to it.
 */
export class PcapWriter {
  readonly #fd: number;
  readonly #buffer = new Uint8Array(FLUSH_AT + 16 + SNAPLEN);
  readonly #view = new DataView(this.#buffer.buffer);
  #used = 0;
  #packets = 0;
  #closed = false;

  /** Creates the file at `path` with a header for `linkType` (101 raw IP, 1 Ethernet...). */
  constructor(path: string, linkType: number) {
    this.#fd = openSync(path, "w");
    const v = this.#view;
    v.setUint32(0, 0xa1b2c3d4, true);
    v.setUint16(4, 2, true);
    v.setUint16(6, 4, true);
    v.setUint32(16, SNAPLEN, true);
    v.setUint32(20, linkType, true);
    this.#used = 24;
  }

  /** Records appended so far. */
  get packets(): number {
    return this.#packets;
  }

  /**
   * Appends a record at `timeMs` (ms since the epoch) holding `data`, of a packet that was
   * `originalLength` bytes long (more than `data` when it was captured short).
   */
  write(timeMs: number, data: Uint8Array, originalLength: number): void {
    if (this.#closed) throw new Error("the pcap file is closed");
    const kept = Math.min(data.length, SNAPLEN);
    const seconds = Math.floor(timeMs / 1000);
    const micros = Math.min(999_999, Math.round((timeMs - seconds * 1000) * 1000));
    const v = this.#view;
    const at = this.#used;
    v.setUint32(at, seconds, true);
    v.setUint32(at + 4, micros, true);
    v.setUint32(at + 8, kept, true);
    v.setUint32(at + 12, Math.max(originalLength, kept), true);
    this.#buffer.set(data.subarray(0, kept), at + 16);
    this.#used = at + 16 + kept;
    this.#packets++;
    if (this.#used >= FLUSH_AT) this.#flush();
  }

  /** Writes what is buffered and closes the file; does nothing the second time. */
  close(): void {
    if (this.#closed) return;
    this.#flush();
    closeSync(this.#fd);
    this.#closed = true;
  }

  #flush(): void {
    let done = 0;
    while (done < this.#used) done += writeSync(this.#fd, this.#buffer, done, this.#used - done);
    this.#used = 0;
  }
}
