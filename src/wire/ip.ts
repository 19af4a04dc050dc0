/** What IPv4 and IPv6 share: the version nibble, the declared length, the protocol numbers. */
import { Malformed, PacketView, uint } from "./view.ts";

/** IP protocol numbers (IPv4 protocol, IPv6 next header) this layer knows. */
export const IpProtocol = {
  Icmp: 1,
  Icmpv6: 58,
  Udp: 17,
} as const;

/**
 * The IP version of a packet starting at `start` in `array`: the high 4 bits of its first byte,
 * or -1 when there is no byte there.
 */
export function ipVersion(array: Uint8Array, start = 0): number {
  return start >= 0 && start < array.length ? (array[start] as number) >>> 4 : -1;
}

/** What an IP view's checks report. */
export type IpFault = "truncated" | "bad-version" | "bad-length";

/**
 * What the IPv4 and IPv6 views share: the version field, the length of the whole packet that
 * the header declares, and `check()` built on their `checkHeader()`.
 */
export abstract class IpPacket extends PacketView {
  /** A view of bytes [start, start + length) of `array`, unchecked: see `PacketView`. */
  constructor(array: Uint8Array, start = 0, length = array.length - start) {
    super(array, start, length); // explicit: an implicit one forwards arguments slowly
  }

  /** The version field (4 or 6 in a checked view), 0 to 15. */
  get version(): number {
    return this.u8(0) >>> 4;
  }
  set version(version: number) {
    this.setU8(0, (uint("an IP version", version, 15) << 4) | (this.u8(0) & 0x0f));
  }

  /** The length of the whole packet, header included, that the header declares. */
  abstract get totalLength(): number;

  /**
   * The `onesSum` of the pseudo-header (RFC 768, RFC 8200 section 8.1) that a UDP (or TCP)
   * checksum covers: the two addresses of this header, `protocol` and `length` (the upper-layer
   * packet's). Reads the addresses only: safe after `checkHeader()`.
   */
  pseudoHeaderSum(protocol: number, length: number): number {
    const [from, to] = this.addressRange;
    return this.sum(from, to, undefined, protocol + length);
  }

  /** The source address, whatever the version: a live view of its 4 or 16 bytes. */
  get sourceBytes(): Uint8Array {
    const [from, to] = this.addressRange;
    return this.window(from, (to - from) / 2);
  }

  /** The destination address, whatever the version: a live view of its 4 or 16 bytes. */
  get destinationBytes(): Uint8Array {
    const [from, to] = this.addressRange;
    return this.window((from + to) / 2, (to - from) / 2);
  }

  /** Bytes [from, to) of the header that hold the source and then the destination address. */
  protected abstract get addressRange(): readonly [number, number];

  /**
   * Like `check()`, but the payload may be cut short (a packet read into too small a buffer):
   * the version and the header must be whole and possible, the view may end before
   * `totalLength`. Then the header's fields are safe to read, not the payload.
   */
  abstract checkHeader(): Malformed<IpFault> | undefined;

  /**
   * See `PacketView.check`: `checkHeader()`, then "bad-length" when `totalLength` is more than
   * the view holds. Bytes past `totalLength` (link padding) are allowed.
   */
  check(): Malformed<IpFault> | undefined {
    const header = this.checkHeader();
    if (header !== undefined) return header;
    const total = this.totalLength;
    if (total <= this.length) return undefined;
    return new Malformed(
      this.format,
      "bad-length",
      `the header declares ${total} bytes, there are ${this.length}`,
    );
  }

  /** Which IP this view reads. */
  protected abstract get format(): "IPv4" | "IPv6";

  /**
   * For `checkHeader`: "truncated" for an empty view, "bad-version" unless the version is the
   * format's, else `undefined`.
   */
  protected versionFault(): Malformed<"truncated" | "bad-version"> | undefined {
    const format = this.format;
    if (this.length === 0) return new Malformed(format, "truncated", "no bytes, no header");
    const want = format === "IPv4" ? 4 : 6;
    const version = this.version;
    if (version === want) return undefined;
    return new Malformed(format, "bad-version", `version ${version} is not ${want}`);
  }
}
