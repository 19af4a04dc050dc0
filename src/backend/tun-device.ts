/**
 * TUN/TAP devices: create one (with one queue, or several for multi-queue), give it an IPv4
 * address, an MTU, bring it up, destroy it. Each queue is a non-blocking file descriptor a
 * backend reads packets from and writes packets to; hand one queue to each worker.
 */
import { parseIPv4Cidr } from "../io/addr.ts";
import { ioError } from "../sys/errno.ts";
import { native } from "../sys/native.ts";

/** Layer 3 (IP packets) or layer 2 (Ethernet frames). */
export type TunMode = "tun" | "tap";

/** Options of `TunDevice.create`. */
export interface TunDeviceOptions {
  /** Interface name, 1 to 15 characters (no "/", ":" or whitespace); "tun%d" lets the kernel number it. */
  name: string;
  /** Default "tun". */
  mode?: TunMode;
  /** Queues (one file descriptor each); more than 1 makes a multi-queue device. Default 1. */
  queues?: number;
  /** IPv4 address and prefix of the kernel side, for example "10.77.0.1/24". */
  address?: string;
  /** MTU in bytes. Default: the kernel's (1500). */
  mtu?: number;
  /** Bring the device up. Default true. */
  up?: boolean;
}

/** A TUN/TAP operation failed; `code` is the errno name, the message says what to do. */
export class TunError extends Error {
  override readonly name = "TunError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const IFNAMSIZ = 16;
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
const utf8 = new TextEncoder();

/** A TUN or TAP device made by this process; it disappears when `close()` closes its queues. */
export class TunDevice {
  /** The interface name the kernel gave it. */
  readonly name: string;
  readonly mode: TunMode;
  /** One non-blocking file descriptor per queue. */
  readonly queues: readonly number[];
  #closed = false;

  private constructor(name: string, mode: TunMode, queues: number[]) {
    this.name = name;
    this.mode = mode;
    this.queues = queues;
  }

  /**
   * Creates and configures a device; throws a `TunError` saying what went wrong and what to do.
   * Its queues belong to the thread that creates it: created inside a runtime worker, they are
   * closed (and the device removed) when that worker ends. Create a device that several workers
   * share on the main thread.
   */
  static create(options: TunDeviceOptions): TunDevice {
    const { name, mode = "tun", queues = 1, up = true } = options;
    checkName(name);
    if (mode !== "tun" && mode !== "tap") {
      throw new TypeError(`mode must be "tun" or "tap", got ${String(mode)}`);
    }
    if (!Number.isInteger(queues) || queues < 1 || queues > 256) {
      throw new RangeError(`queues must be 1 to 256, got ${queues}`);
    }
    const address = options.address === undefined ? undefined : parseCidr(options.address);
    const n = native();
    const out = new Uint8Array(IFNAMSIZ);
    const fds: number[] = [];
    let real = name;
    try {
      for (let q = 0; q < queues; q++) {
        const fd = n.sio_tun_open(cString(real), mode === "tap" ? 1 : 0, queues > 1 ? 1 : 0, out);
        if (fd < 0) throw openError(fd, real, mode);
        fds.push(fd);
        real = new TextDecoder().decode(out.subarray(0, out.indexOf(0)));
      }
      const device = new TunDevice(real, mode, fds);
      if (options.mtu !== undefined) device.setMtu(options.mtu);
      if (address !== undefined) device.setAddress(options.address as string);
      if (up) device.setUp(true);
      return device;
    } catch (e) {
      for (const fd of fds) n.sio_close(fd);
      throw e;
    }
  }

  /** Sets the kernel side's IPv4 address and prefix ("10.77.0.1/24"). */
  setAddress(cidr: string): void {
    const { address, prefix } = parseCidr(cidr);
    this.#check(native().sio_if_set_ipv4(cString(this.name), address, prefix), `set ${cidr} on`);
  }

  /** Sets the MTU. */
  setMtu(mtu: number): void {
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
      throw new RangeError(`mtu must be 68 to 65535, got ${mtu}`);
    }
    this.#check(native().sio_if_set_mtu(cString(this.name), mtu), `set MTU ${mtu} on`);
  }

  /** Brings the device up or down. */
  setUp(up: boolean): void {
    this.#check(
      native().sio_if_set_up(cString(this.name), up ? 1 : 0),
      `bring ${up ? "up" : "down"}`,
    );
  }

  /** Closes every queue, which destroys the device. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.queues) native().sio_close(fd);
  }

  #check(r: number, what: string): void {
    if (this.#closed) throw new TunError("EBADF", `device ${this.name} is closed`);
    if (r >= 0) return;
    const e = ioError(r);
    const hint = e.code === "EPERM" ? " (this needs CAP_NET_ADMIN)" : "";
    throw new TunError(e.code, `cannot ${what} device ${this.name}: ${e.message}${hint}`);
  }
}

function checkName(name: string): void {
  if (
    typeof name !== "string" ||
    name.length === 0 ||
    utf8.encode(name).length >= IFNAMSIZ ||
    name === "." ||
    name === ".." ||
    /[/:\s]/.test(name)
  ) {
    throw new TunError(
      "EINVAL",
      `invalid interface name ${JSON.stringify(name)}: use 1 to 15 characters without "/", ":" or spaces`,
    );
  }
}

function openError(r: number, name: string, mode: TunMode): TunError {
  const e = ioError(r);
  switch (e.code) {
    case "ENOENT":
    case "ENODEV":
    case "ENXIO":
      return new TunError(
        e.code,
        "no /dev/net/tun here: load the tun module (modprobe tun), or give the container the device (--device /dev/net/tun)",
      );
    case "EPERM":
    case "EACCES":
      return new TunError(
        e.code,
        `creating ${mode.toUpperCase()} device ${name} needs CAP_NET_ADMIN: run as root, or grant it (setcap cap_net_admin+ep on the bun binary)`,
      );
    case "EBUSY":
      return new TunError(e.code, `device name ${name} is already in use`);
    case "EINVAL":
      return new TunError(
        e.code,
        `device name ${name} is taken by a device of another kind or with other queue settings`,
      );
    default:
      return new TunError(e.code, `cannot create device ${name}: ${e.message}`);
  }
}

/** Parses "a.b.c.d/prefix" into the address in network byte order (as a u32) and the prefix. */
function parseCidr(cidr: string): { address: number; prefix: number } {
  const parsed = parseIPv4Cidr(cidr);
  if (parsed === undefined) {
    throw new TunError(
      "EINVAL",
      `invalid IPv4 address/prefix ${JSON.stringify(cidr)} (like 10.77.0.1/24)`,
    );
  }
  // the u32 whose bytes in this host's memory are a.b.c.d (network byte order)
  const bytes = new DataView(new ArrayBuffer(4));
  bytes.setUint32(0, parsed.address, false);
  return { address: bytes.getUint32(0, LITTLE_ENDIAN), prefix: parsed.prefix };
}

function cString(s: string): Uint8Array {
  const bytes = utf8.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
