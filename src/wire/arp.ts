/** ARP (RFC 826): the view of any ARP packet and the parsed form of Ethernet/IPv4 ARP. */
import { EtherType, MAC_LENGTH } from "./ethernet.ts";
import { getU32, Malformed, PacketView, roomFor, setU32, shortOf, sized, uint } from "./view.ts";

/** Bytes of ARP's fixed part: hardware and protocol types and lengths, operation. */
const FIXED_LENGTH = 8;
/** The hardware type of Ethernet. */
const HARDWARE_ETHERNET = 1;
/** Bytes of an IPv4 address. */
const IPV4_LENGTH = 4;

/** Bytes of an Ethernet/IPv4 ARP packet. */
export const ARP_IPV4_LENGTH = FIXED_LENGTH + 2 * (MAC_LENGTH + IPV4_LENGTH);

/** ARP operations. */
export const ArpOperation = {
  Request: 1,
  Reply: 2,
} as const;

/**
 * A view of an ARP packet of any hardware and protocol: a fixed part, then sender and target
 * addresses whose lengths the fixed part gives. `check()` validates the buffer holds them all;
 * after it every accessor is safe until `hardwareLength` or `protocolLength` is set.
 */
export class ArpPacket extends PacketView {
  /** A view of bytes [start, start + length) of `array`, unchecked: see `PacketView`. */
  constructor(array: Uint8Array, start = 0, length = array.length - start) {
    super(array, start, length); // explicit: an implicit one forwards arguments slowly
  }

  /**
   * See `PacketView.check`: "truncated" when the buffer ends inside the fixed part or inside
   * the addresses its lengths declare. Bytes past the addresses (link padding) are allowed.
   */
  check(): Malformed<"truncated"> | undefined {
    const n = this.length;
    const fixed = shortOf("ARP", n, FIXED_LENGTH, "the fixed part");
    if (fixed !== undefined) return fixed;
    const need = FIXED_LENGTH + 2 * (this.hardwareLength + this.protocolLength);
    return shortOf("ARP", n, need, "the fixed part and the addresses it sizes");
  }

  /** The hardware type (1 for Ethernet), 0 to 0xffff. */
  get hardwareType(): number {
    return this.u16(0);
  }
  set hardwareType(type: number) {
    this.setU16(0, uint("an ARP hardware type", type, 0xffff));
  }

  /** The protocol type (an `EtherType`: 0x0800 for IPv4), 0 to 0xffff. */
  get protocolType(): number {
    return this.u16(2);
  }
  set protocolType(type: number) {
    this.setU16(2, uint("an ARP protocol type", type, 0xffff));
  }

  /** Bytes of a hardware address (6 for Ethernet), 0 to 255. Setting it voids `check()`. */
  get hardwareLength(): number {
    return this.u8(4);
  }
  set hardwareLength(length: number) {
    this.setU8(4, uint("an ARP hardware address length", length, 0xff));
  }

  /** Bytes of a protocol address (4 for IPv4), 0 to 255. Setting it voids `check()`. */
  get protocolLength(): number {
    return this.u8(5);
  }
  set protocolLength(length: number) {
    this.setU8(5, uint("an ARP protocol address length", length, 0xff));
  }

  /** The operation (`ArpOperation`), 0 to 0xffff. */
  get operation(): number {
    return this.u16(6);
  }
  set operation(operation: number) {
    this.setU16(6, uint("an ARP operation", operation, 0xffff));
  }

  /** The sender's hardware address: a live view. */
  get senderHardwareAddress(): Uint8Array {
    return this.#field(0, this.hardwareLength);
  }

  /** The sender's protocol address: a live view. */
  get senderProtocolAddress(): Uint8Array {
    return this.#field(this.hardwareLength, this.protocolLength);
  }

  /** The target's hardware address: a live view. */
  get targetHardwareAddress(): Uint8Array {
    return this.#field(this.hardwareLength + this.protocolLength, this.hardwareLength);
  }

  /** The target's protocol address: a live view. */
  get targetProtocolAddress(): Uint8Array {
    return this.#field(2 * this.hardwareLength + this.protocolLength, this.protocolLength);
  }

  /** `length` bytes at `at` past the fixed part. */
  #field(at: number, length: number): Uint8Array {
    return this.window(FIXED_LENGTH + at, length);
  }
}

/**
 * The parsed form of an ARP packet for IPv4 over Ethernet (the only kind a TAP device's hosts
 * send). MAC addresses are 6-byte copies; IPv4 addresses unsigned 32-bit numbers.
 */
export class ArpRepr {
  /** The operation (`ArpOperation`). */
  readonly operation: number;
  /** The sender's MAC address. */
  readonly senderMac: Uint8Array;
  /** The sender's IPv4 address. */
  readonly senderIp: number;
  /** The target's MAC address (zeros in a request). */
  readonly targetMac: Uint8Array;
  /** The target's IPv4 address (the one asked about, in a request). */
  readonly targetIp: number;

  /** An ARP packet with these fields; throws a RangeError if one does not fit its field. */
  constructor(fields: {
    operation: number;
    senderMac: Uint8Array;
    senderIp: number;
    targetMac: Uint8Array;
    targetIp: number;
  }) {
    this.operation = uint("an ARP operation", fields.operation, 0xffff);
    this.senderMac = sized("a MAC address", fields.senderMac, MAC_LENGTH).slice();
    this.senderIp = uint("an IPv4 address", fields.senderIp, 0xffffffff);
    this.targetMac = sized("a MAC address", fields.targetMac, MAC_LENGTH).slice();
    this.targetIp = uint("an IPv4 address", fields.targetIp, 0xffffffff);
  }

  /**
   * The Ethernet/IPv4 ARP packet in `packet`, or why there is none: its `check()`, or
   * "unsupported" for other hardware or protocols.
   */
  static parse(packet: ArpPacket): ArpRepr | Malformed {
    const malformed = packet.check();
    if (malformed !== undefined) return malformed;
    const h = packet.hardwareType;
    const p = packet.protocolType;
    const hl = packet.hardwareLength;
    const pl = packet.protocolLength;
    if (
      h !== HARDWARE_ETHERNET ||
      p !== EtherType.Ipv4 ||
      hl !== MAC_LENGTH ||
      pl !== IPV4_LENGTH
    ) {
      return new Malformed(
        "ARP",
        "unsupported",
        `hardware ${h}, protocol 0x${p.toString(16)}, address lengths ${hl}/${pl} are not Ethernet and IPv4`,
      );
    }
    return new ArpRepr({
      operation: packet.operation,
      senderMac: packet.senderHardwareAddress,
      senderIp: getU32(packet.senderProtocolAddress, 0),
      targetMac: packet.targetHardwareAddress,
      targetIp: getU32(packet.targetProtocolAddress, 0),
    });
  }

  /** Bytes the packet takes (28). */
  get bufferLength(): number {
    return ARP_IPV4_LENGTH;
  }

  /** Writes the packet into `packet`; throws a RangeError if it has fewer than 28 bytes. */
  emit(packet: ArpPacket): void {
    roomFor("an ARP packet", packet, ARP_IPV4_LENGTH);
    packet.hardwareType = HARDWARE_ETHERNET;
    packet.protocolType = EtherType.Ipv4;
    packet.hardwareLength = MAC_LENGTH;
    packet.protocolLength = IPV4_LENGTH;
    packet.operation = this.operation;
    packet.senderHardwareAddress.set(this.senderMac);
    setU32(packet.senderProtocolAddress, 0, this.senderIp);
    packet.targetHardwareAddress.set(this.targetMac);
    setU32(packet.targetProtocolAddress, 0, this.targetIp);
  }
}
