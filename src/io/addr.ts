/**
 * A socket address (IPv4 or IPv6 plus port) kept in the kernel's own sockaddr layout, so the
 * backends hand it to the kernel without conversion. The text form is computed on demand, from
 * the bytes as they are then (a backend reuses the `from` of received datagrams).
 */
const AF_INET = 2;
const AF_INET6 = 10;
/** Bytes of the raw form (the size of a sockaddr_in6). */
export const ADDR_BYTES = 28;

export class SocketAddr {
  /** Raw sockaddr bytes (a view: see `copy`). */
  readonly raw: Uint8Array;

  /** Wraps raw sockaddr bytes (not copied). Use `SocketAddr.parse` to build one from text. */
  constructor(raw: Uint8Array) {
    if (raw.length !== ADDR_BYTES)
      throw new RangeError(`a raw socket address has ${ADDR_BYTES} bytes, got ${raw.length}`);
    this.raw = raw;
  }

  /** Parses an IPv4 or IPv6 literal (no host names) and a port. Throws a RangeError if invalid. */
  static parse(address: string, port: number): SocketAddr {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(`port must be an integer from 0 to 65535, got ${port}`);
    }
    const raw = new Uint8Array(ADDR_BYTES);
    const view = new DataView(raw.buffer);
    const v4 = parseIPv4(address);
    if (v4 !== undefined) {
      view.setUint16(0, AF_INET, true);
      raw.set(v4, 4);
    } else {
      const v6 = parseIPv6(
        address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address,
      );
      if (v6 === undefined)
        throw new RangeError(`not an IPv4 or IPv6 address: ${JSON.stringify(address)}`);
      view.setUint16(0, AF_INET6, true);
      raw.set(v6, 8);
    }
    view.setUint16(2, port, false);
    return new SocketAddr(raw);
  }

  /**
   * The address of `ip`, 4 bytes (IPv4) or 16 (IPv6) in network order, and `port`; the bytes
   * are copied. Throws a RangeError for another length or an invalid port.
   */
  static fromIp(ip: Uint8Array, port: number): SocketAddr {
    if (ip.length !== 4 && ip.length !== 16)
      throw new RangeError(`an IP address has 4 or 16 bytes, got ${ip.length}`);
    const addr = SocketAddr.parse(ip.length === 4 ? "0.0.0.0" : "::", port);
    addr.raw.set(ip, ip.length === 4 ? 4 : 8);
    return addr;
  }

  /** The IP address's bytes in network order (a view of `raw`: 4 for IPv4, 16 for IPv6). */
  get ip(): Uint8Array {
    return this.family === 4 ? this.raw.subarray(4, 8) : this.raw.subarray(8, 24);
  }

  /** 4 or 6. */
  get family(): 4 | 6 {
    return ((this.raw[0] as number) | ((this.raw[1] as number) << 8)) === AF_INET6 ? 6 : 4;
  }

  /** The port. */
  get port(): number {
    return ((this.raw[2] as number) << 8) | (this.raw[3] as number);
  }

  /** The address in text form ("127.0.0.1", "::1"). */
  get address(): string {
    return this.family === 4 ? formatIPv4(this.ip) : formatIPv6(this.ip);
  }

  /** A copy that does not share memory with a receive buffer (keep this one past a drain). */
  copy(): SocketAddr {
    return new SocketAddr(this.raw.slice(0, ADDR_BYTES));
  }

  /** True when both denote the same family, address and port. */
  equals(other: SocketAddr): boolean {
    const n = this.family === 4 ? 8 : 24;
    for (let i = 0; i < n; i++) if (this.raw[i] !== other.raw[i]) return false;
    return true;
  }

  /** "1.2.3.4:5" or "[::1]:5". */
  toString(): string {
    return this.family === 4 ? `${this.address}:${this.port}` : `[${this.address}]:${this.port}`;
  }
}

/**
 * Parses an IPv4 address with a prefix length, "10.77.0.1/24" (prefix 0 to 32). Returns the
 * address as an unsigned 32-bit number (a.b.c.d is a·2^24 + b·2^16 + c·2^8 + d), or undefined
 * when the text is not one.
 */
export function parseIPv4Cidr(text: string): { address: number; prefix: number } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  if (m === null) return undefined;
  const parts = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (parts.some((p) => p > 255) || prefix > 32) return undefined;
  return { address: parts.reduce((a, p) => a * 256 + p, 0), prefix };
}

function parseIPv4(s: string): Uint8Array | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    out[i] = Number(p);
  }
  return out;
}

function parseIPv6(s: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (text: string): number[] | undefined => {
    if (text === "") return [];
    const out: number[] = [];
    const items = text.split(":");
    for (let i = 0; i < items.length; i++) {
      const g = items[i] as string;
      if (i === items.length - 1 && g.includes(".")) {
        const v4 = parseIPv4(g);
        if (v4 === undefined) return undefined;
        out.push(
          ((v4[0] as number) << 8) | (v4[1] as number),
          ((v4[2] as number) << 8) | (v4[3] as number),
        );
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        out.push(Number.parseInt(g, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0] as string);
  const tail = halves.length === 2 ? groups(halves[1] as string) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [
    ...head,
    ...Array.from({ length: halves.length === 2 ? missing : 0 }, () => 0),
    ...tail,
  ];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

function formatIPv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

function formatIPv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i] as number) << 8) | (b[i + 1] as number));
  // the longest run of two or more zero groups becomes "::"
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}
