/**
 * Turning a `NetAction` into the backend operation it asks for: one dispatcher for every backend
 * (the kernel's and the simulated one), so that each action means the same everywhere.
 */
import type { SocketAddr } from "../io/addr.ts";
import type { IoError, NetAction, NetEvent } from "../io/events.ts";
import { MAX_UDP_PAYLOAD, MAX_UDP6_PAYLOAD } from "./backend.ts";

/** Largest packet a TUN/TAP queue takes in one write. */
const MAX_TUN_PACKET = 65535;

/** The error for an action on UDP socket `socket` when it is not open. */
export function socketNotOpen(socket: number): IoError {
  return { code: "EBADF", message: `socket ${socket} is not open` };
}

/** The error for an action on device `device` when it is not bound. */
export function deviceNotBound(device: number): IoError {
  return { code: "EBADF", message: `device ${device} is not bound` };
}

/** The error for opening UDP socket `socket` under an id that an open socket has. */
export function socketIdInUse(socket: number): IoError {
  return { code: "EEXIST", message: `socket id ${socket} is already in use` };
}

/** The error for binding device `device` under an id that a bound device has. */
export function deviceIdInUse(device: number): IoError {
  return { code: "EEXIST", message: `device id ${device} is already in use` };
}

/** Why a datagram of `length` bytes to `to` cannot be sent (larger than UDP allows), or undefined. */
export function datagramSizeError(to: SocketAddr, length: number): IoError | undefined {
  const max = to.family === 4 ? MAX_UDP_PAYLOAD : MAX_UDP6_PAYLOAD;
  if (length <= max) return undefined;
  return {
    code: "EMSGSIZE",
    message: `datagram of ${length} bytes is larger than UDP allows (${max})`,
  };
}

/** Why a packet of `length` bytes cannot be written into a TUN/TAP queue, or undefined. */
export function packetSizeError(length: number): IoError | undefined {
  if (length > 0 && length <= MAX_TUN_PACKET) return undefined;
  return {
    code: "EMSGSIZE",
    message: `a packet of ${length} bytes cannot be written (1 to ${MAX_TUN_PACKET})`,
  };
}

/** The operations a backend carries out, one per kind of action (sends are one datagram each). */
export interface ActionHandler {
  /** Opens UDP socket `socket` bound to `bind`. */
  listen(
    owner: number,
    socket: number,
    bind: SocketAddr,
    reuseAddr: boolean,
    reusePort: boolean,
  ): void;
  /** Closes UDP socket `socket`, or reports `notOpen` when it is not open. */
  unlisten(owner: number, socket: number, notOpen: NetEvent): void;
  /** Sends one datagram of `data` to `to` from socket `socket`. */
  send(owner: number, socket: number, to: SocketAddr, data: Uint8Array): void;
  /** Binds TUN/TAP queue `fd` as device `device`. */
  bind(owner: number, device: number, fd: number): void;
  /** Unbinds device `device`, or reports `notBound` when it is not bound. */
  unbind(owner: number, device: number, notBound: NetEvent): void;
  /** Writes one packet into device `device`. */
  write(owner: number, device: number, data: Uint8Array): void;
  /** Carries out a TCP action (`TcpTable.act`). */
  tcp(owner: number, action: NetAction): void;
}

/** Carries out `action` for `owner` through `handler`. */
export function dispatchAction(handler: ActionHandler, owner: number, action: NetAction): void {
  switch (action.kind) {
    case "udp-listen":
      handler.listen(
        owner,
        action.socket,
        action.bind,
        action.reuseAddr ?? false,
        action.reusePort ?? false,
      );
      return;
    case "udp-unlisten":
      handler.unlisten(owner, action.socket, {
        kind: "udp-closed",
        socket: action.socket,
        error: socketNotOpen(action.socket),
      });
      return;
    case "udp-send":
      handler.send(owner, action.socket, action.to, action.data);
      return;
    case "udp-send-many":
      for (const to of action.to) handler.send(owner, action.socket, to, action.data);
      return;
    case "udp-send-batch":
      for (const p of action.packets) handler.send(owner, p.socket, p.to, p.data);
      return;
    case "tun-bind":
      handler.bind(owner, action.device, action.fd);
      return;
    case "tun-unbind":
      handler.unbind(owner, action.device, {
        kind: "tun-unbound",
        device: action.device,
        error: deviceNotBound(action.device),
      });
      return;
    case "tun-send":
      handler.write(owner, action.device, action.data);
      return;
    default:
      handler.tcp(owner, action);
  }
}
