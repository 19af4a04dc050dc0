/** ICMP for IPv4 (RFC 792): the view of a message and the parsed form of echo messages. */
import type { Checksummer } from "./checksum.ts";
import { Malformed, PacketView, refusal, shortOf, uint } from "./view.ts";

/** Bytes of the ICMP header: type, code, checksum and 4 bytes that depend on the type. */
export const ICMPV4_HEADER_LENGTH = 8;

/** ICMP message types this layer knows. */
export const Icmpv4Type = {
  EchoReply: 0,
  EchoRequest: 8,
} as const;

/**
 * A view of one ICMP message, exactly (the checksum covers every byte of it): an IPv4 packet's
 * payload, see `Ipv4Packet.payloadAs`. `check()` needs the 8-byte header; every accessor is safe
 * after it.
 */
export class Icmpv4Packet extends PacketView {
  /** A view of bytes [start, start + length) of `array`, unchecked: see `PacketView`. */
  constructor(array: Uint8Array, start = 0, length = array.length - start) {
    super(array, start, length); // explicit: an implicit one forwards arguments slowly
  }

  /** See `PacketView.check`: the header must be whole ("truncated" if not). */
  check(): Malformed<"truncated"> | undefined {
    return shortOf("ICMPv4", this.length, ICMPV4_HEADER_LENGTH, "the header");
  }

  /** The message type (`Icmpv4Type`), 0 to 255. */
  get messageType(): number {
    return this.u8(0);
  }
  set messageType(type: number) {
    this.setU8(0, uint("an ICMP type", type, 0xff));
  }

  /** The code (what kind of the type), 0 to 255. */
  get code(): number {
    return this.u8(1);
  }
  set code(code: number) {
    this.setU8(1, uint("an ICMP code", code, 0xff));
  }

  /** The checksum field (over the whole message), 0 to 0xffff. */
  get checksum(): number {
    return this.u16(2);
  }
  set checksum(checksum: number) {
    this.setU16(2, uint("a checksum", checksum, 0xffff));
  }

  /** An echo message's identifier (bytes 4-5), 0 to 0xffff. */
  get echoIdent(): number {
    return this.u16(4);
  }
  set echoIdent(ident: number) {
    this.setU16(4, uint("an echo identifier", ident, 0xffff));
  }

  /** An echo message's sequence number (bytes 6-7), 0 to 0xffff. */
  get echoSeq(): number {
    return this.u16(6);
  }
  set echoSeq(seq: number) {
    this.setU16(6, uint("an echo sequence number", seq, 0xffff));
  }

  /** The bytes after the header: a live view. */
  get data(): Uint8Array {
    return this.window(ICMPV4_HEADER_LENGTH, this.length - ICMPV4_HEADER_LENGTH);
  }

  /**
   * True when the checksum verifies (the whole message sums to 0xffff). A `Checksummer` makes
   * it faster for many packets of one buffer; the result is the same.
   */
  verifyChecksum(summer?: Checksummer): boolean {
    return this.sum(0, this.length, summer) === 0xffff;
  }

  /** Computes the checksum over the whole message (through `summer` if given) and writes it. */
  fillChecksum(summer?: Checksummer): void {
    this.fillChecksumAt(2, 0, this.length, summer);
  }
}

/** The parsed form of an ICMP echo request or reply ("ping"). */
export class Icmpv4Repr {
  /** Request or reply. */
  readonly kind: "echo-request" | "echo-reply";
  /** The identifier (which pinger). */
  readonly ident: number;
  /** The sequence number. */
  readonly seq: number;
  /** The data echoed: a view of the parsed message's bytes, not a copy. */
  readonly data: Uint8Array;

  /** An echo message with these fields; throws a RangeError if one does not fit its field. */
  constructor(fields: {
    kind: "echo-request" | "echo-reply";
    ident: number;
    seq: number;
    data: Uint8Array;
  }) {
    this.kind = fields.kind;
    this.ident = uint("an echo identifier", fields.ident, 0xffff);
    this.seq = uint("an echo sequence number", fields.seq, 0xffff);
    this.data = fields.data;
  }

  /**
   * The echo message in `packet`, or why there is none: its `check()`, "bad-checksum", or
   * "unsupported" for another type or an echo with a code other than 0.
   */
  static parse(packet: Icmpv4Packet): Icmpv4Repr | Malformed {
    const refused = refusal(packet, "ICMPv4", "checksum");
    if (refused !== undefined) return refused;
    const type = packet.messageType;
    const echo = type === Icmpv4Type.EchoRequest || type === Icmpv4Type.EchoReply;
    if (!echo || packet.code !== 0) {
      return new Malformed(
        "ICMPv4",
        "unsupported",
        `type ${type} code ${packet.code} is not an echo message`,
      );
    }
    return new Icmpv4Repr({
      kind: type === Icmpv4Type.EchoRequest ? "echo-request" : "echo-reply",
      ident: packet.echoIdent,
      seq: packet.echoSeq,
      data: packet.data,
    });
  }

  /** Bytes the message takes: the header and the data. */
  get bufferLength(): number {
    return ICMPV4_HEADER_LENGTH + this.data.length;
  }

  /**
   * Writes the message, checksum included, into `packet`, whose bytes must be exactly
   * `bufferLength` long (the checksum covers them all; a RangeError if not). The data may
   * already be in place (parsed from the same bytes).
   */
  emit(packet: Icmpv4Packet): void {
    if (packet.length !== this.bufferLength) {
      throw new RangeError(
        `an ICMP echo message of ${this.bufferLength} bytes cannot fill a ${packet.length}-byte view (the checksum covers it all)`,
      );
    }
    packet.messageType =
      this.kind === "echo-request" ? Icmpv4Type.EchoRequest : Icmpv4Type.EchoReply;
    packet.code = 0;
    packet.echoIdent = this.ident;
    packet.echoSeq = this.seq;
    packet.array.set(this.data, packet.start + ICMPV4_HEADER_LENGTH);
    packet.fillChecksum();
  }
}
