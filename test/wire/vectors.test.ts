/**
 * Known packets, captured from Linux 6.18 in a private network namespace: what `ping` sent into
 * a TUN device (IPv4 and IPv6), the ARP request the kernel sent into a TAP device, and a UDP
 * datagram a Bun socket sent into a TUN device (IPv4 and IPv6; `tcpdump -vvv`: "udp sum ok").
 * Every field as the kernel wrote it, checksums as computed by the kernel and by `ping`.
 */
import { expect, test } from "bun:test";
import {
  ArpOperation,
  ArpPacket,
  ArpRepr,
  buildUdpPacket,
  EthernetFrame,
  EthernetRepr,
  EtherType,
  Icmpv4Packet,
  Icmpv4Repr,
  IpProtocol,
  Ipv4Packet,
  Ipv4Repr,
  Ipv6Packet,
  readUdpPacket,
  UdpPacket,
} from "../../src/wire/index.ts";

function hex(s: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(s.match(/../g) ?? [], (b) => Number.parseInt(b, 16));
}

/** `ping -c 1 -s 16 10.0.0.2` from 10.0.0.1/24 on a TUN device: 16 bytes of timestamp as data. */
const ECHO_REQUEST = hex(
  "4500002cd3cd4000400153010a0000010a000002" +
    "08001739078c0001" +
    "3566046b0000000094680b0000000000",
);

/** `ping -6 -c 1 -s 16 fd00::2` from fd00::1/64 on a TUN device (ICMPv6). */
const ECHO6_REQUEST = hex(
  "6008c2fa00183a40fd000000000000000000000000000001fd000000000000000000000000000002" +
    "800040e2089d00013d66046b00000000ec560e0000000000",
);

/** "wire layer" from 10.0.0.1:40000 to 10.0.0.2:40001 (`Bun.udpSocket` on a TUN device). */
const UDP4 = hex(
  "45000026fafa400040112bca0a0000010a000002" + "9c409c410012e21e" + "77697265206c61796572",
);

/** The same from [fd00::1]:40000 to [fd00::2]:40001. */
const UDP6 = hex(
  "600c426a00121140fd000000000000000000000000000001fd000000000000000000000000000002" +
    "9c409c410012fc1c" +
    "77697265206c61796572",
);

/** Who has 10.0.0.2? Tell 10.0.0.1, from 02:00:0a:00:00:01, on a TAP device. */
const ARP_REQUEST = hex(
  "ffffffffffff02000a0000010806" +
    "0001080006040001" +
    "02000a0000010a000001" +
    "0000000000000a000002",
);

test("an ICMP echo request as ping sent it: every field, both checksums", () => {
  const ip = Ipv4Packet.checked(ECHO_REQUEST);
  expect([ip.version, ip.headerLength, ip.dscp, ip.ecn, ip.totalLength]).toEqual([4, 20, 0, 0, 44]);
  expect([ip.ident, ip.dontFragment, ip.moreFragments, ip.fragmentOffset]).toEqual([
    0xd3cd,
    true,
    false,
    0,
  ]);
  expect([ip.ttl, ip.protocol, ip.checksum]).toEqual([64, IpProtocol.Icmp, 0x5301]);
  expect([ip.source, ip.destination]).toEqual([0x0a000001, 0x0a000002]);
  expect(ip.verifyChecksum()).toBe(true);
  ip.fillChecksum();
  expect(ip.checksum).toBe(0x5301);

  const icmp = ip.payloadAs(Icmpv4Packet);
  expect(icmp.check()).toBeUndefined();
  expect([icmp.messageType, icmp.code, icmp.checksum]).toEqual([8, 0, 0x1739]);
  expect(icmp.verifyChecksum()).toBe(true);
  icmp.fillChecksum();
  expect(icmp.checksum).toBe(0x1739);

  expect(Ipv4Repr.parse(ip)).toEqual(
    new Ipv4Repr({
      source: 0x0a000001,
      destination: 0x0a000002,
      protocol: 1,
      ttl: 64,
      payloadLength: 24,
    }),
  );
  expect(Icmpv4Repr.parse(icmp)).toEqual(
    new Icmpv4Repr({
      kind: "echo-request",
      ident: 0x078c,
      seq: 1,
      data: ECHO_REQUEST.subarray(28),
    }),
  );
});

test("the echo request re-emitted from its parsed form is the same message", () => {
  const icmp = Icmpv4Packet.checked(ECHO_REQUEST.subarray(20));
  const repr = Icmpv4Repr.parse(icmp) as Icmpv4Repr;
  const out = new Uint8Array(repr.bufferLength);
  repr.emit(new Icmpv4Packet(out));
  expect(out).toEqual(ECHO_REQUEST.subarray(20));
});

test("an IPv6 echo request as ping sent it: the fixed header and its lengths", () => {
  const ip = Ipv6Packet.checked(ECHO6_REQUEST);
  expect([ip.version, ip.trafficClass, ip.flowLabel]).toEqual([6, 0, 0x8c2fa]);
  expect([ip.payloadLength, ip.totalLength, ip.nextHeader, ip.hopLimit]).toEqual([
    24,
    64,
    IpProtocol.Icmpv6,
    64,
  ]);
  expect(ip.source).toEqual(hex("fd000000000000000000000000000001"));
  expect(ip.destination).toEqual(hex("fd000000000000000000000000000002"));
  expect(ip.payload).toEqual(ECHO6_REQUEST.subarray(40));
  // cut short, the header still says how long the packet was
  const cut = new Ipv6Packet(ECHO6_REQUEST, 0, 50);
  expect(cut.check()?.fault).toBe("bad-length");
  expect(cut.checkHeader()).toBeUndefined();
  expect(cut.totalLength).toBe(64);
});

test("an ARP request as the kernel sent it: the frame, the packet and its parsed form", () => {
  const frame = EthernetFrame.checked(ARP_REQUEST);
  expect(EthernetRepr.parse(frame)).toEqual(
    new EthernetRepr({
      destination: hex("ffffffffffff"),
      source: hex("02000a000001"),
      etherType: EtherType.Arp,
    }),
  );
  const arp = frame.payloadAs(ArpPacket);
  expect(arp.check()).toBeUndefined();
  expect([arp.hardwareType, arp.protocolType, arp.hardwareLength, arp.protocolLength]).toEqual([
    1, 0x0800, 6, 4,
  ]);
  expect(arp.targetProtocolAddress).toEqual(hex("0a000002"));
  const repr = ArpRepr.parse(arp);
  expect(repr).toEqual(
    new ArpRepr({
      operation: ArpOperation.Request,
      senderMac: hex("02000a000001"),
      senderIp: 0x0a000001,
      targetMac: new Uint8Array(6),
      targetIp: 0x0a000002,
    }),
  );
  const out = new Uint8Array(28);
  (repr as ArpRepr).emit(new ArpPacket(out));
  expect(out).toEqual(ARP_REQUEST.subarray(14));
});

test("an IPv4 packet cut short still says its length to checkHeader (what the backend needs)", () => {
  const cut = new Ipv4Packet(ECHO_REQUEST, 0, 30);
  expect(cut.check()?.fault).toBe("bad-length");
  expect(cut.checkHeader()).toBeUndefined();
  expect(cut.totalLength).toBe(44);
  expect(new Ipv4Packet(ECHO_REQUEST, 0, 19).checkHeader()?.fault).toBe("truncated");
});

test("a UDP datagram as the kernel sent it, over IPv4 and IPv6: every field, the checksums", () => {
  const payload = new TextEncoder().encode("wire layer");
  for (const [bytes, sum] of [
    [UDP4, 0xe21e],
    [UDP6, 0xfc1c],
  ] as const) {
    const v4 = bytes[0] === 0x45;
    const ip = v4 ? Ipv4Packet.checked(bytes) : Ipv6Packet.checked(bytes);
    const udp = ip.payloadAs(UdpPacket);
    expect(udp.check()).toBeUndefined();
    expect([udp.sourcePort, udp.destinationPort, udp.datagramLength, udp.checksum]).toEqual([
      40000,
      40001,
      18,
      sum,
    ]);
    expect(udp.payload).toEqual(payload);
    expect(udp.verifyChecksum(ip)).toBe(true);
    udp.fillChecksum(ip);
    expect(udp.checksum).toBe(sum);

    const read = readUdpPacket(bytes);
    if (typeof read === "string") throw new Error(read);
    expect([read.source.ip, read.destination.ip]).toEqual([ip.sourceBytes, ip.destinationBytes]);
    expect([read.source.port, read.destination.port, read.payload]).toEqual([
      40000,
      40001,
      payload,
    ]);
    // built again: the same UDP bytes; the IP header differs only where the kernel chose
    // (identification, flow label), so the header checksum differs and the UDP one does not
    const built = buildUdpPacket(read.source, read.destination, payload);
    const header = v4 ? 20 : 40;
    expect(built.subarray(header)).toEqual(bytes.subarray(header));
    const same = bytes.slice(0, header);
    if (v4) {
      same.set([0, 0], 4);
      new Ipv4Packet(same).fillChecksum();
    } else same.set([0x60, 0, 0, 0], 0);
    expect(built.subarray(0, header)).toEqual(same);
  }
  expect(Ipv4Packet.checked(UDP4).checksum).toBe(0x2bca);
});
