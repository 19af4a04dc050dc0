/** Ethernet II frames (what a TAP device carries): the view and its parsed header. */
import {
  type Malformed,
  PacketView,
  roomFor,
  shortOf,
  sized,
  uint,
  type ViewClass,
} from "./view.ts";

/** Bytes of an Ethernet II header: destination, source, EtherType. */
export const ETHERNET_HEADER_LENGTH = 14;

/** Bytes of a MAC address. */
export const MAC_LENGTH = 6;

const MAC = "a MAC address";

/** EtherTypes this layer knows: what the payload of a frame is. */
export const EtherType = {
  Ipv4: 0x0800,
  Arp: 0x0806,
  Ipv6: 0x86dd,
} as const;

/**
 * A view of an Ethernet II frame (no 802.1Q tag, no frame check sequence): a header and the
 * payload after it. `check()` needs the 14-byte header; every accessor is safe after it.
 */
export class EthernetFrame extends PacketView {
  /** A view of bytes [start, start + length) of `array`, unchecked: see `PacketView`. */
  constructor(array: Uint8Array, start = 0, length = array.length - start) {
    super(array, start, length); // explicit: an implicit one forwards arguments slowly
  }

  /** See `PacketView.check`: the header must be whole ("truncated" if not). */
  check(): Malformed<"truncated"> | undefined {
    return shortOf("Ethernet", this.length, ETHERNET_HEADER_LENGTH, "the header");
  }

  /** The destination MAC address: a live view of its 6 bytes. Set copies 6 bytes in. */
  get destination(): Uint8Array {
    return this.window(0, MAC_LENGTH);
  }
  set destination(mac: Uint8Array) {
    this.array.set(sized(MAC, mac, MAC_LENGTH), this.start);
  }

  /** The source MAC address: a live view of its 6 bytes. Set copies 6 bytes in. */
  get source(): Uint8Array {
    return this.window(MAC_LENGTH, MAC_LENGTH);
  }
  set source(mac: Uint8Array) {
    this.array.set(sized(MAC, mac, MAC_LENGTH), this.start + MAC_LENGTH);
  }

  /** Swaps the destination and source addresses in place (to send the frame back). */
  swapAddresses(): void {
    const a = this.array;
    for (let i = this.start; i < this.start + MAC_LENGTH; i++) {
      const t = a[i] as number;
      a[i] = a[i + MAC_LENGTH] as number;
      a[i + MAC_LENGTH] = t;
    }
  }

  /** What the payload is (`EtherType`), 0 to 0xffff. */
  get etherType(): number {
    return this.u16(12);
  }
  set etherType(type: number) {
    this.setU16(12, uint("an EtherType", type, 0xffff));
  }

  /** The bytes after the header (a live view, padding included: the header does not say). */
  get payload(): Uint8Array {
    return this.window(ETHERNET_HEADER_LENGTH, this.length - ETHERNET_HEADER_LENGTH);
  }

  /** A view of class `kind` over the payload, sharing this frame's array (nothing is copied). */
  payloadAs<V extends PacketView>(kind: ViewClass<V>): V {
    return this.viewAt(kind, ETHERNET_HEADER_LENGTH, this.length - ETHERNET_HEADER_LENGTH);
  }
}

/** The parsed form of an Ethernet II header (its addresses are copies). */
export class EthernetRepr {
  /** The destination MAC address (6 bytes). */
  readonly destination: Uint8Array;
  /** The source MAC address (6 bytes). */
  readonly source: Uint8Array;
  /** What the payload is (`EtherType`). */
  readonly etherType: number;

  /** A header with these fields; throws a RangeError if one does not fit its field. */
  constructor(fields: { destination: Uint8Array; source: Uint8Array; etherType: number }) {
    this.destination = sized(MAC, fields.destination, MAC_LENGTH).slice();
    this.source = sized(MAC, fields.source, MAC_LENGTH).slice();
    this.etherType = uint("an EtherType", fields.etherType, 0xffff);
  }

  /** The header of `frame`, or why it has none (its `check()`). */
  static parse(frame: EthernetFrame): EthernetRepr | Malformed {
    const malformed = frame.check();
    if (malformed !== undefined) return malformed;
    return new EthernetRepr(frame);
  }

  /** Bytes the header takes (the payload follows it). */
  get bufferLength(): number {
    return ETHERNET_HEADER_LENGTH;
  }

  /** Writes the header into `frame`; throws a RangeError if it has fewer than 14 bytes. */
  emit(frame: EthernetFrame): void {
    roomFor("an Ethernet header", frame, ETHERNET_HEADER_LENGTH);
    frame.destination = this.destination;
    frame.source = this.source;
    frame.etherType = this.etherType;
  }
}
