/** IPv6 packets (RFC 8200): a read-only view of the fixed header. */
import { type IpFault, IpPacket } from "./ip.ts";
import { type Malformed, shortOf } from "./view.ts";

/** Bytes of the IPv6 fixed header (extension headers count as payload). */
export const IPV6_HEADER_LENGTH = 40;

/**
 * A view of an IPv6 packet: the fixed header and the payload its payload length declares
 * (extension headers are part of the payload; jumbograms are not supported). `check()`
 * validates the version and the lengths; after it every accessor is safe.
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

  /** The length of the whole packet the header declares: 40 plus the payload length. */
  get totalLength(): number {
    return IPV6_HEADER_LENGTH + this.payloadLength;
  }

  /** The next header (`IpProtocol`, or an extension header), 0 to 255. */
  get nextHeader(): number {
    return this.u8(6);
  }

  /** The hop limit, 0 to 255. */
  get hopLimit(): number {
    return this.u8(7);
  }

  /** The source address: a live view of its 16 bytes. */
  get source(): Uint8Array {
    return this.window(8, 16);
  }

  /** The destination address: a live view of its 16 bytes. */
  get destination(): Uint8Array {
    return this.window(24, 16);
  }

  protected get format(): "IPv6" {
    return "IPv6";
  }

  /** The payload: a live view of the bytes after the fixed header, up to the payload length. */
  get payload(): Uint8Array {
    return this.window(IPV6_HEADER_LENGTH, this.payloadLength);
  }
}
