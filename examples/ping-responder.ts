/**
 * The TUN ping responder's packet logic, pure and sans-IO: validate what the kernel sent into
 * the device and, for an ICMP echo request to one of the subnet's addresses, turn the packet into
 * its reply in place (so the worker writes the receive buffer back without a copy). In TAP mode
 * it also answers ARP requests for those addresses and unwraps/rewraps Ethernet. Packets are read
 * and written through the wire layer's views (`bun-sansio/wire`).
 */
import { parseIPv4Cidr } from "bun-sansio/io";
import {
  ArpOperation,
  ArpPacket,
  ArpRepr,
  adjustChecksum,
  Checksummer,
  EthernetFrame,
  EtherType,
  Icmpv4Packet,
  Icmpv4Type,
  IpProtocol,
  Ipv4Packet,
  Malformed,
} from "bun-sansio/wire";

/** The wire layer's checksum functions, for the tests and tools that build packets. */
export { adjustChecksum, internetChecksum, onesSum } from "bun-sansio/wire";

/** Why a packet got no answer. The first four are malformed input (see `MALFORMED`). */
export type Drop =
  | "truncated"
  | "bad-version"
  | "bad-length"
  | "bad-checksum"
  | "fragment"
  | "not-for-us"
  | "ignored";

/** What `PingResponder.answer` did with a packet. */
export type Verdict = "echo-reply" | "arp-reply" | Drop;

/** Drops that mean the packet itself is broken (as opposed to well-formed but not ours). */
export const MALFORMED: readonly Drop[] = [
  "truncated",
  "bad-version",
  "bad-length",
  "bad-checksum",
];

const REPLY_TTL = 64;

/** An IPv4 subnet and the kernel's own address in it, as unsigned 32-bit numbers. */
export interface Subnet {
  readonly self: number;
  readonly network: number;
  readonly broadcast: number;
  readonly prefix: number;
}

/** Parses "10.77.0.1/24" (the kernel side's address and prefix). Throws a RangeError if invalid. */
export function parseSubnet(cidr: string): Subnet {
  const parsed = parseIPv4Cidr(cidr);
  if (parsed === undefined || parsed.prefix < 8 || parsed.prefix > 30) {
    throw new RangeError(
      `invalid address ${JSON.stringify(cidr)}: use an IPv4 address with a prefix of 8 to 30, like 10.77.0.1/24`,
    );
  }
  const { address: self, prefix } = parsed;
  const size = 2 ** (32 - prefix);
  const network = self - (self % size);
  const broadcast = network + size - 1;
  if (self === network || self === broadcast) {
    throw new RangeError(`${cidr} is the network's own or broadcast address, not a host address`);
  }
  return { self, network, broadcast, prefix };
}

/** True when `address` is a host of the subnet other than the kernel's own address. */
export function answersFor(subnet: Subnet, address: number): boolean {
  return address > subnet.network && address < subnet.broadcast && address !== subnet.self;
}

/**
 * Answers pings (and, in TAP mode, ARP) for every host address of a subnet but the kernel's own.
 * Keeps nothing about the packets it saw (only a checksum cache of the receive buffer): one
 * instance serves any number of packets.
 */
export class PingResponder {
  readonly subnet: Subnet;
  readonly mode: "tun" | "tap";
  readonly #summer = new Checksummer();

  /** `cidr` is the kernel side's address ("10.77.0.1/24"); `mode` what the device carries. */
  constructor(cidr: string, mode: "tun" | "tap" = "tun") {
    this.subnet = parseSubnet(cidr);
    this.mode = mode;
  }

  /**
   * Looks at one packet (TUN: an IP packet; TAP: an Ethernet frame). For "echo-reply" and
   * "arp-reply" the bytes have been rewritten into the reply, to be written back whole; for any
   * other verdict they are unchanged and get no answer. Never throws, whatever the bytes.
   */
  answer(packet: Uint8Array): Verdict {
    if (this.mode === "tun") return this.#ipv4(new Ipv4Packet(packet));
    const frame = new EthernetFrame(packet);
    if (frame.check() !== undefined) return "truncated";
    const type = frame.etherType;
    if (type === EtherType.Arp) return this.#arp(frame);
    if (type !== EtherType.Ipv4) return "ignored";
    const verdict = this.#ipv4(frame.payloadAs(Ipv4Packet));
    if (verdict === "echo-reply") frame.swapAddresses(); // back to the sender, from its target
    return verdict;
  }

  #ipv4(ip: Ipv4Packet): Verdict {
    const malformed = ip.check();
    if (malformed !== undefined) {
      // IPv6 is the kernel's own chatter on the link, not a broken packet
      return malformed.fault === "bad-version" && ip.version === 6 ? "ignored" : malformed.fault;
    }
    if (!ip.verifyChecksum(this.#summer)) return "bad-checksum";
    if (ip.isFragment) return "fragment"; // no reassembly here
    if (ip.protocol !== IpProtocol.Icmp) return "ignored";
    if (!answersFor(this.subnet, ip.destination)) return "not-for-us";
    const icmp = ip.payloadAs(Icmpv4Packet);
    if (icmp.check() !== undefined) return "truncated";
    if (!icmp.verifyChecksum(this.#summer)) return "bad-checksum";
    if (icmp.messageType !== Icmpv4Type.EchoRequest || icmp.code !== 0) return "ignored";
    // the reply: addresses swapped, a fresh TTL, type 0; identifier, sequence and data unchanged.
    // Each checksum is updated for the one word that changes (RFC 1624: swapping addresses
    // leaves the sum as it is; the TTL's word also holds the protocol, which cancels out), or
    // summed again when the update is ambiguous (0).
    const requester = ip.source;
    ip.source = ip.destination;
    ip.destination = requester;
    const ipSum = adjustChecksum(ip.checksum, ip.ttl << 8, REPLY_TTL << 8);
    ip.ttl = REPLY_TTL;
    if (ipSum !== 0) ip.checksum = ipSum;
    else ip.fillChecksum(this.#summer);
    const icmpSum = adjustChecksum(
      icmp.checksum,
      Icmpv4Type.EchoRequest << 8,
      Icmpv4Type.EchoReply << 8,
    );
    icmp.messageType = Icmpv4Type.EchoReply;
    if (icmpSum !== 0) icmp.checksum = icmpSum;
    else icmp.fillChecksum(this.#summer);
    return "echo-reply";
  }

  #arp(frame: EthernetFrame): Verdict {
    const arp = frame.payloadAs(ArpPacket);
    const request = ArpRepr.parse(arp);
    if (request instanceof Malformed)
      return request.fault === "truncated" ? "truncated" : "ignored";
    if (request.operation !== ArpOperation.Request) return "ignored";
    if (!answersFor(this.subnet, request.targetIp)) return "not-for-us";
    // the reply: the asked-for address answers with its MAC, to the requester
    const mac = macFor(request.targetIp);
    const reply = new ArpRepr({
      operation: ArpOperation.Reply,
      senderMac: mac,
      senderIp: request.targetIp,
      targetMac: request.senderMac,
      targetIp: request.senderIp,
    });
    reply.emit(arp);
    frame.destination = frame.source;
    frame.source = mac;
    return "arp-reply";
  }
}

/** The MAC address the TAP responder uses for `address`: 02:00 and the address's four bytes. */
export function macFor(address: number): Uint8Array {
  return Uint8Array.of(
    0x02,
    0x00,
    address >>> 24,
    (address >>> 16) & 0xff,
    (address >>> 8) & 0xff,
    address & 0xff,
  );
}
