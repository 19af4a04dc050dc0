/** IPv6 packets (RFC 8200): a view of the fixed header. */
import { type IpFault, IpPacket } from "./ip.ts";
import { type Malformed, type PacketView, shortOf, sized, uint, type ViewClass } from "./view.ts";

/** Bytes of the IPv6 fixed header (extension headers count as payload). */
export const IPV6_HEADER_LENGTH = 40;

/** Bytes of an IPv6 address. */
const ADDRESS_LENGTH = 16;
/** Where the source and destination addresses are in the header. */
const ADDRESS_RANGE = [8, 40] as const;

/**
 * A view of an IPv6 packet: the fixed header and the payload its payload length declares
 * (extension headers are part of the payload; jumbograms are not supported). `check()`
 * validates the version and the lengths; after it every accessor is safe until `payloadLength`
 * is set. The traffic class and flow label are read-only (an emitter leaves them zero).
 */
export class Ipv6Packet extends IpPacket {
  /** A view of bytes [start, start + length) of `array`, unchecked: see `PacketView`. */
  constructor(array: Uint8Array, start = 0, length = array.length - start) {
    super(array, start, length); // explicit: an implicit one forwards arguments slowly
  }

  /**
   * See `IpPacket.checkHeader`. In order: "truncated" for no bytes, "bad-version" unless version
   * 6, "truncated" under 40 bytes. `check()` then says "bad-length" when the payload length is
   * more than the view holds after the header.
   */
  checkHeader(): Malformed<IpFault> | undefined {
    return this.versionFault() ?? shortOf("IPv6", this.length, IPV6_HEADER_LENGTH, "the header");
  }

  /** The traffic class (DSCP and ECN), 0 to 255. */
  get trafficClass(): number {
    return (this.u16(0) >>> 4) & 0xff;
  }

  /** The flow label, 0 to 0xfffff. */
  get flowLabel(): number {
    return (this.u8(1) & 0x0f) * 65536 + this.u16(2);
  }

  /** The payload length field: bytes after the fixed header, extension headers included. */
  get payloadLength(): number {
    return this.u16(4);
  }
  set payloadLength(length: number) {
    this.setU16(4, uint("an IPv6 payload length", length, 0xffff));
  }

  /** The length of the whole packet the header declares: 40 plus the payload length. */
  get totalLength(): number {
    return IPV6_HEADER_LENGTH + this.payloadLength;
  }

  /** The next header (`IpProtocol`, or an extension header), 0 to 255. */
  get nextHeader(): number {
    return this.u8(6);
  }
  set nextHeader(next: number) {
    this.setU8(6, uint("an IPv6 next header", next, 0xff));
  }

  /** The hop limit, 0 to 255. */
  get hopLimit(): number {
    return this.u8(7);
  }
  set hopLimit(limit: number) {
    this.setU8(7, uint("a hop limit", limit, 0xff));
  }

  /** The source address: a live view of its 16 bytes (set: copies 16 bytes in). */
  get source(): Uint8Array {
    return this.window(8, ADDRESS_LENGTH);
  }
  set source(address: Uint8Array) {
    this.source.set(sized("an IPv6 address", address, ADDRESS_LENGTH));
  }

  /** The destination address: a live view of its 16 bytes (set: copies 16 bytes in). */
  get destination(): Uint8Array {
    return this.window(24, ADDRESS_LENGTH);
  }
  set destination(address: Uint8Array) {
    this.destination.set(sized("an IPv6 address", address, ADDRESS_LENGTH));
  }

  protected get format(): "IPv6" {
    return "IPv6";
  }

  protected get addressRange(): readonly [number, number] {
    return ADDRESS_RANGE;
  }

  /** The payload: a live view of the bytes after the fixed header, up to the payload length. */
  get payload(): Uint8Array {
    return this.window(IPV6_HEADER_LENGTH, this.payloadLength);
  }

  /**
   * A view of class `kind` over the payload (header end to payload length), sharing this
   * packet's array: nothing is copied. Throws a RangeError when the payload length does not fit
   * the view (it always does once `check()` has passed).
   */
  payloadAs<V extends PacketView>(kind: ViewClass<V>): V {
    return this.viewAt(kind, IPV6_HEADER_LENGTH, this.payloadLength);
  }
}
