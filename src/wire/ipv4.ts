/** IPv4 packets (RFC 791): the view and the parsed header. */
import type { Checksummer } from "./checksum.ts";
import { type IpFault, IpPacket } from "./ip.ts";
import {
  Malformed,
  type PacketView,
  refusal,
  roomFor,
  shortOf,
  uint,
  type ViewClass,
} from "./view.ts";

/** Bytes of an IPv4 header without options (the shortest there is). */
export const IPV4_HEADER_LENGTH = 20;

/** Bytes of the longest IPv4 header (15 words). */
const MAX_HEADER_LENGTH = 60;
/** The flags-and-fragment-offset word: don't fragment, more fragments, the offset in 8-byte units. */
const DONT_FRAGMENT = 0x4000;
const MORE_FRAGMENTS = 0x2000;
const OFFSET_MASK = 0x1fff;
/** Where the source and destination addresses are in the header. */
const ADDRESS_RANGE = [12, 20] as const;

/**
 * A view of an IPv4 packet: the header (options included) and the payload up to the total
 * length. `check()` validates the version, the header and total lengths and the buffer's length;
 * after it every accessor is safe until `headerLength` or `totalLength` is set. Addresses are
 * unsigned 32-bit numbers (10.0.0.1 is 0x0a000001).
 */
export class Ipv4Packet extends IpPacket {
  /** A view of bytes [start, start + length) of `array`, unchecked: see `PacketView`. */
  constructor(array: Uint8Array, start = 0, length = array.length - start) {
    super(array, start, length); // explicit: an implicit one forwards arguments slowly
  }

  /**
   * See `IpPacket.checkHeader`. In order: "truncated" for no bytes, "bad-version" unless version
   * 4, "truncated" under 20 bytes, "bad-length" for a header length under 20 or a total length
   * under the header length, "truncated" when the view ends inside the header. `check()` then
   * says "bad-length" when the total length is more than the view holds.
   */
  checkHeader(): Malformed<IpFault> | undefined {
    const n = this.length;
    const wrong =
      this.versionFault() ?? shortOf("IPv4", n, IPV4_HEADER_LENGTH, "the shortest header");
    if (wrong !== undefined) return wrong;
    const header = this.headerLength;
    const total = this.totalLength;
    if (header < IPV4_HEADER_LENGTH) {
      return new Malformed("IPv4", "bad-length", `header length ${header} is below 20`);
    }
    if (total < header) {
      return new Malformed(
        "IPv4",
        "bad-length",
        `total length ${total} is below the header's ${header}`,
      );
    }
    return shortOf("IPv4", n, header, "the header");
  }

  /** The header length in bytes (the IHL field times 4): 20 to 60 in a checked view. */
  get headerLength(): number {
    return (this.u8(0) & 0x0f) * 4;
  }
  set headerLength(length: number) {
    if (length % 4 !== 0) {
      throw new RangeError(`an IPv4 header length must be a multiple of 4, not ${length}`);
    }
    const words = uint("an IPv4 header length", length, MAX_HEADER_LENGTH) / 4;
    this.setU8(0, (this.u8(0) & 0xf0) | words);
  }

  /** The differentiated services code point, 0 to 63. */
  get dscp(): number {
    return this.u8(1) >>> 2;
  }
  set dscp(dscp: number) {
    this.setU8(1, (uint("a DSCP", dscp, 63) << 2) | (this.u8(1) & 0x03));
  }

  /** The explicit congestion notification bits, 0 to 3. */
  get ecn(): number {
    return this.u8(1) & 0x03;
  }
  set ecn(ecn: number) {
    this.setU8(1, (this.u8(1) & 0xfc) | uint("an ECN", ecn, 3));
  }

  /** The total length field: the whole packet, header included, in bytes. */
  get totalLength(): number {
    return this.u16(2);
  }
  set totalLength(length: number) {
    this.setU16(2, uint("an IPv4 total length", length, 0xffff));
  }

  /** The identification field (which fragments belong together), 0 to 0xffff. */
  get ident(): number {
    return this.u16(4);
  }
  set ident(ident: number) {
    this.setU16(4, uint("an IPv4 identification", ident, 0xffff));
  }

  /** The don't-fragment flag. */
  get dontFragment(): boolean {
    return (this.u16(6) & DONT_FRAGMENT) !== 0;
  }
  set dontFragment(on: boolean) {
    this.#setFlag(DONT_FRAGMENT, on);
  }

  /** The more-fragments flag. */
  get moreFragments(): boolean {
    return (this.u16(6) & MORE_FRAGMENTS) !== 0;
  }
  set moreFragments(on: boolean) {
    this.#setFlag(MORE_FRAGMENTS, on);
  }

  /** Where this fragment's data goes in the original payload, in bytes (a multiple of 8). */
  get fragmentOffset(): number {
    return (this.u16(6) & OFFSET_MASK) * 8;
  }
  set fragmentOffset(offset: number) {
    if (offset % 8 !== 0) {
      throw new RangeError(`a fragment offset must be a multiple of 8, not ${offset}`);
    }
    const units = uint("a fragment offset", offset, OFFSET_MASK * 8) / 8;
    this.setU16(6, (this.u16(6) & ~OFFSET_MASK) | units);
  }

  /** True for a fragment (more fragments follow, or an offset): not a whole datagram. */
  get isFragment(): boolean {
    return (this.u16(6) & (MORE_FRAGMENTS | OFFSET_MASK)) !== 0;
  }

  /** The time to live, 0 to 255. */
  get ttl(): number {
    return this.u8(8);
  }
  set ttl(ttl: number) {
    this.setU8(8, uint("a TTL", ttl, 0xff));
  }

  /** The payload's protocol (`IpProtocol`), 0 to 255. */
  get protocol(): number {
    return this.u8(9);
  }
  set protocol(protocol: number) {
    this.setU8(9, uint("an IP protocol", protocol, 0xff));
  }

  /** The header checksum field, 0 to 0xffff. */
  get checksum(): number {
    return this.u16(10);
  }
  set checksum(checksum: number) {
    this.setU16(10, uint("a checksum", checksum, 0xffff));
  }

  /** The source address, as an unsigned 32-bit number. */
  get source(): number {
    return this.u32(12);
  }
  set source(address: number) {
    this.setU32(12, uint("an IPv4 address", address, 0xffffffff));
  }

  /** The destination address, as an unsigned 32-bit number. */
  get destination(): number {
    return this.u32(16);
  }
  set destination(address: number) {
    this.setU32(16, uint("an IPv4 address", address, 0xffffffff));
  }

  /** The payload: a live view of the bytes from the end of the header to the total length. */
  get payload(): Uint8Array {
    return this.window(this.headerLength, this.totalLength - this.headerLength);
  }

  /**
   * A view of class `kind` over the payload (header end to total length), sharing this packet's
   * array: nothing is copied or sliced. Throws a RangeError when the lengths do not fit the view
   * (they always do once `check()` has passed).
   */
  payloadAs<V extends PacketView>(kind: ViewClass<V>): V {
    return this.viewAt(kind, this.headerLength, this.totalLength - this.headerLength);
  }

  /**
   * True when the header checksum verifies (the header sums to 0xffff). A `Checksummer` makes
   * it faster for many packets of one buffer; the result is the same.
   */
  verifyChecksum(summer?: Checksummer): boolean {
    return this.sum(0, this.headerLength, summer) === 0xffff;
  }

  /** Computes the header checksum (through `summer` if given) and writes it into the header. */
  fillChecksum(summer?: Checksummer): void {
    this.fillChecksumAt(10, 0, this.headerLength, summer);
  }

  protected get format(): "IPv4" {
    return "IPv4";
  }

  protected get addressRange(): readonly [number, number] {
    return ADDRESS_RANGE;
  }

  #setFlag(flag: number, on: boolean): void {
    const word = this.u16(6);
    this.setU16(6, on ? word | flag : word & ~flag);
  }
}

/**
 * The parsed form of an IPv4 header, for a whole (unfragmented) datagram: what a host needs to
 * deliver it. Options, identification, DSCP, ECN and flags are not kept; `emit` writes a
 * 20-byte header with them all zero.
 */
export class Ipv4Repr {
  /** The source address (unsigned 32-bit). */
  readonly source: number;
  /** The destination address (unsigned 32-bit). */
  readonly destination: number;
  /** The payload's protocol (`IpProtocol`). */
  readonly protocol: number;
  /** The time to live. */
  readonly ttl: number;
  /** Bytes of payload after the header. */
  readonly payloadLength: number;

  /** A header with these fields; throws a RangeError if one does not fit its field. */
  constructor(fields: {
    source: number;
    destination: number;
    protocol: number;
    ttl: number;
    payloadLength: number;
  }) {
    this.source = uint("an IPv4 address", fields.source, 0xffffffff);
    this.destination = uint("an IPv4 address", fields.destination, 0xffffffff);
    this.protocol = uint("an IP protocol", fields.protocol, 0xff);
    this.ttl = uint("a TTL", fields.ttl, 0xff);
    this.payloadLength = uint(
      "an IPv4 payload length",
      fields.payloadLength,
      0xffff - IPV4_HEADER_LENGTH,
    );
  }

  /**
   * The header of `packet`, or why it has none usable: its `check()`, "bad-checksum", or
   * "unsupported" for a fragment (no reassembly here).
   */
  static parse(packet: Ipv4Packet): Ipv4Repr | Malformed {
    const refused = refusal(packet, "IPv4", "header checksum");
    if (refused !== undefined) return refused;
    if (packet.isFragment) {
      return new Malformed(
        "IPv4",
        "unsupported",
        `a fragment (offset ${packet.fragmentOffset}) is not a whole datagram`,
      );
    }
    return new Ipv4Repr({
      source: packet.source,
      destination: packet.destination,
      protocol: packet.protocol,
      ttl: packet.ttl,
      payloadLength: packet.totalLength - packet.headerLength,
    });
  }

  /** Bytes the header takes (the payload follows it). */
  get bufferLength(): number {
    return IPV4_HEADER_LENGTH;
  }

  /**
   * Writes the header, checksum included, into `packet`, whose buffer must hold the header and
   * `payloadLength` bytes of payload (a RangeError if not); the payload is left as it is.
   */
  emit(packet: Ipv4Packet): void {
    roomFor("an IPv4 packet", packet, IPV4_HEADER_LENGTH + this.payloadLength);
    packet.version = 4;
    packet.headerLength = IPV4_HEADER_LENGTH;
    packet.dscp = 0;
    packet.ecn = 0;
    packet.totalLength = IPV4_HEADER_LENGTH + this.payloadLength;
    packet.ident = 0;
    packet.dontFragment = false;
    packet.moreFragments = false;
    packet.fragmentOffset = 0;
    packet.ttl = this.ttl;
    packet.protocol = this.protocol;
    packet.source = this.source;
    packet.destination = this.destination;
    packet.fillChecksum();
  }
}
