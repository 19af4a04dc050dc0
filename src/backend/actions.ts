/**
 * Turning a `NetAction` into the backend operation it asks for: one dispatcher for every backend
 * (the kernel's and the simulated one), so that each action means the same everywhere.
 */
import type { SocketAddr } from "../io/addr.ts";
import type { NetAction, NetEvent } from "../io/events.ts";

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
        error: { code: "EBADF", message: `socket ${action.socket} is not open` },
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
        error: { code: "EBADF", message: `device ${action.device} is not bound` },
      });
      return;
    case "tun-send":
      handler.write(owner, action.device, action.data);
      return;
  }
}
