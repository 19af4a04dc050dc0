/**
 * Task-local socket, device, TCP listener and TCP connection ids: each task numbers its own, the
 * worker's backend sees worker-wide ids. Actions are translated on the way out, events on the
 * way back. Accepted TCP connections keep the (negative) id the backend gave them.
 */
import { deviceIdInUse, deviceNotBound, socketIdInUse, socketNotOpen } from "../backend/actions.ts";
import type { SocketAddr } from "../io/addr.ts";
import type { NetAction, NetEvent } from "../io/events.ts";
import type { TaskRecord } from "./record.ts";

interface Route {
  readonly record: TaskRecord;
  readonly local: number;
  /** Closed by the runtime behind the task (a failed open, an ended task): events are swallowed. */
  detached: boolean;
  /** Its close was asked for: no second one goes to the backend. */
  closing: boolean;
}

/** One kind of id (sockets, or devices): worker-wide ids handed out lowest-free first. */
class IdTable {
  readonly routes: (Route | undefined)[] = [];
  readonly #free: number[] = [];
  inUse = 0;

  open(record: TaskRecord, local: number): number {
    const id = this.#free.pop() ?? this.routes.length;
    if (id === this.routes.length) this.routes.push(undefined);
    this.routes[id] = { record, local, detached: false, closing: false };
    this.inUse++;
    return id;
  }

  /** The id is closed for good (its closing event came): it may be handed out again. */
  free(id: number): void {
    if (this.routes[id] === undefined) return;
    this.routes[id] = undefined;
    this.#free.push(id);
    this.inUse--;
  }
}

/** The event a task gets instead of an action on a TCP connection it does not have. */
function noConn(action: NetAction & { readonly conn: number }): NetEvent {
  const error = { code: "EBADF", message: `connection ${action.conn} is not open` };
  return action.kind === "tcp-close" || action.kind === "tcp-abort"
    ? { kind: "tcp-closed", conn: action.conn, error }
    : action.kind === "tcp-connect"
      ? {
          kind: "tcp-connect-result",
          conn: action.conn,
          error: { code: "EEXIST", message: `connection id ${action.conn} is already in use` },
        }
      : { kind: "tcp-send-error", conn: action.conn, error };
}

/**
 * Contract: a worker-wide id is handed out at `udp-listen` / `tun-bind` / `tcp-listen` /
 * `tcp-connect` (or by the backend at `tcp-accept`) and freed only when its closing event
 * (`udp-closed`, `tun-unbound`, `tcp-unlistened`, `tcp-closed`, a failed `tcp-connect-result`)
 * comes back, so a late event never reaches another task through a reused id. A connection
 * accepted on a listener whose task has ended is reset. A failed listen or bind is answered to the task at once and closed
 * behind its back. Events for a task that has ended are dropped (counted in `staleDrops`, except
 * the closing events the runtime itself asked for).
 */
export class NetRoutes {
  /** Events dropped because their task had ended. */
  staleDrops = 0;
  /** Actions the runtime itself must carry out (closing what a failed open left). */
  readonly followUps: { readonly owner: number; readonly action: NetAction }[] = [];
  readonly #sockets = new IdTable();
  readonly #devices = new IdTable();
  readonly #listeners = new IdTable();
  /** Connections of `tcp-connect` (non-negative ids). */
  readonly #conns = new IdTable();
  /** Accepted connections, by the backend's negative id. */
  readonly #accepted = new Map<number, Route>();
  readonly #tcpSend = { kind: "tcp-send" as const, conn: 0, data: new Uint8Array(0) as Uint8Array };
  readonly #tcpData = { kind: "tcp-data" as const, conn: 0, data: new Uint8Array(0) as Uint8Array };
  // reused objects of the per-packet path
  readonly #send = {
    kind: "udp-send" as const,
    socket: 0,
    to: null as unknown as SocketAddr,
    data: new Uint8Array(0) as Uint8Array,
  };
  readonly #packet = {
    kind: "udp-packet" as const,
    socket: 0,
    from: null as unknown as SocketAddr,
    data: new Uint8Array(0) as Uint8Array,
    size: 0,
    truncated: false,
  };
  readonly #tunSend = {
    kind: "tun-send" as const,
    device: 0,
    data: new Uint8Array(0) as Uint8Array,
  };
  readonly #tunPacket = {
    kind: "tun-packet" as const,
    device: 0,
    data: new Uint8Array(0) as Uint8Array,
    size: 0,
    truncated: false,
  };
  readonly #inbound = { record: null as unknown as TaskRecord, event: null as unknown as NetEvent };
  readonly #refuse: (r: TaskRecord, event: NetEvent) => void;

  /** Routes whose refusals (`outbound`) `refuse` gives to the task as the event it gets instead. */
  constructor(refuse: (r: TaskRecord, event: NetEvent) => void) {
    this.#refuse = refuse;
  }

  /** True when no id is open or closing. */
  isEmpty(): boolean {
    return (
      this.#sockets.inUse === 0 &&
      this.#devices.inUse === 0 &&
      this.#listeners.inUse === 0 &&
      this.#conns.inUse === 0 &&
      this.#accepted.size === 0
    );
  }

  /**
   * `action` of task `r` with worker-wide ids (a reused object for sends: carry it out before
   * the next call), or undefined when it is refused: then the task is given the event it gets
   * instead (an unknown id, an id already in use) through the constructor's `refuse`.
   */
  outbound(r: TaskRecord, action: NetAction): NetAction | undefined {
    switch (action.kind) {
      case "udp-send": {
        const id = r.sockets.get(action.socket);
        if (id === undefined) return this.#noSocket(r, action.socket);
        const send = this.#send;
        send.socket = id;
        send.to = action.to;
        send.data = action.data;
        return send;
      }
      case "tun-send": {
        const id = r.devices.get(action.device);
        if (id === undefined) return this.#noDevice(r, action.device);
        const send = this.#tunSend;
        send.device = id;
        send.data = action.data;
        return send;
      }
      case "udp-send-many": {
        const id = r.sockets.get(action.socket);
        if (id === undefined) return this.#noSocket(r, action.socket);
        return { ...action, socket: id };
      }
      case "udp-send-batch": {
        const packets = [];
        for (const p of action.packets) {
          const id = r.sockets.get(p.socket);
          if (id === undefined) this.#noSocket(r, p.socket);
          else packets.push({ socket: id, to: p.to, data: p.data });
        }
        return packets.length === 0 ? undefined : { kind: "udp-send-batch", packets };
      }
      case "udp-listen": {
        if (r.sockets.has(action.socket)) {
          this.#refuse(r, {
            kind: "udp-listen-result",
            socket: action.socket,
            error: socketIdInUse(action.socket),
          });
          return undefined;
        }
        const id = this.#sockets.open(r, action.socket);
        r.sockets.set(action.socket, id);
        return { ...action, socket: id };
      }
      case "udp-unlisten": {
        const id = r.sockets.get(action.socket);
        if (id === undefined || this.#startClose(this.#sockets, id)) {
          this.#refuse(r, {
            kind: "udp-closed",
            socket: action.socket,
            error: socketNotOpen(action.socket),
          });
          return undefined;
        }
        return { kind: "udp-unlisten", socket: id };
      }
      case "tun-bind": {
        if (r.devices.has(action.device)) {
          this.#refuse(r, {
            kind: "tun-bind-result",
            device: action.device,
            error: deviceIdInUse(action.device),
          });
          return undefined;
        }
        const id = this.#devices.open(r, action.device);
        r.devices.set(action.device, id);
        return { kind: "tun-bind", device: id, fd: action.fd };
      }
      case "tun-unbind": {
        const id = r.devices.get(action.device);
        if (id === undefined || this.#startClose(this.#devices, id)) {
          this.#refuse(r, {
            kind: "tun-unbound",
            device: action.device,
            error: deviceNotBound(action.device),
          });
          return undefined;
        }
        return { kind: "tun-unbind", device: id };
      }
      case "tcp-send": {
        const id = r.conns.get(action.conn);
        if (id === undefined) return this.#refused(r, noConn(action));
        const send = this.#tcpSend;
        send.conn = id;
        send.data = action.data;
        return send;
      }
      case "tcp-listen": {
        if (r.listeners.has(action.listener)) {
          return this.#refused(r, {
            kind: "tcp-listen-result",
            listener: action.listener,
            error: { code: "EEXIST", message: `listener id ${action.listener} is already in use` },
          });
        }
        const id = this.#listeners.open(r, action.listener);
        r.listeners.set(action.listener, id);
        return { ...action, listener: id };
      }
      case "tcp-unlisten": {
        const id = r.listeners.get(action.listener);
        if (id === undefined || this.#startClose(this.#listeners, id)) {
          return this.#refused(r, {
            kind: "tcp-unlistened",
            listener: action.listener,
            error: { code: "EBADF", message: `listener ${action.listener} is not open` },
          });
        }
        return { kind: "tcp-unlisten", listener: id };
      }
      case "tcp-connect": {
        if (!Number.isInteger(action.conn) || action.conn < 0) {
          return this.#refused(r, {
            kind: "tcp-connect-result",
            conn: action.conn,
            error: {
              code: "EINVAL",
              message: `connection ids of tcp-connect are non-negative integers, got ${action.conn}`,
            },
          });
        }
        if (r.conns.has(action.conn)) return this.#refused(r, noConn(action));
        const id = this.#conns.open(r, action.conn);
        r.conns.set(action.conn, id);
        return { ...action, conn: id };
      }
      default: {
        // pause, resume, shutdown, close, abort
        const id = r.conns.get(action.conn);
        if (id === undefined) return this.#refused(r, noConn(action));
        if (action.kind === "tcp-close" || action.kind === "tcp-abort")
          (this.#connRoute(id) as Route).closing = true;
        return { ...action, conn: id };
      }
    }
  }

  /**
   * Where a backend event goes: its task and the event with the task's own ids (a reused object:
   * deliver it before the next call), or undefined when it goes nowhere (its task has ended).
   */
  inbound(event: NetEvent): { readonly record: TaskRecord; readonly event: NetEvent } | undefined {
    if (event.kind === "tcp-accept") return this.#accept(event);
    const { route, free } = this.#route(event);
    if (route === undefined) {
      this.staleDrops++;
      return undefined;
    }
    const { record, local } = route;
    if (free !== undefined) {
      free();
      const owned = this.#owned(event, record);
      if (owned.get(local) === this.#globalId(event)) owned.delete(local);
    }
    if (route.detached || !record.alive) {
      if (free === undefined && !record.alive) this.staleDrops++;
      return undefined;
    }
    const out = this.#inbound;
    out.record = record;
    out.event = this.#local(event, local);
    return out;
  }

  /** Closes everything task `r` had open (it has ended); returns the actions that do it. */
  release(r: TaskRecord): NetAction[] {
    const actions: NetAction[] = [];
    for (const id of r.sockets.values()) {
      (this.#sockets.routes[id] as Route).detached = true;
      if (!this.#startClose(this.#sockets, id)) actions.push({ kind: "udp-unlisten", socket: id });
    }
    for (const id of r.devices.values()) {
      (this.#devices.routes[id] as Route).detached = true;
      if (!this.#startClose(this.#devices, id)) actions.push({ kind: "tun-unbind", device: id });
    }
    for (const id of r.listeners.values()) {
      (this.#listeners.routes[id] as Route).detached = true;
      if (!this.#startClose(this.#listeners, id))
        actions.push({ kind: "tcp-unlisten", listener: id });
    }
    for (const id of r.conns.values()) {
      const route = this.#connRoute(id) as Route;
      route.detached = true;
      // what the task queued still goes out: a graceful close, unless one is under way
      if (!route.closing) {
        route.closing = true;
        actions.push({ kind: "tcp-close", conn: id });
      }
    }
    return actions;
  }

  /**
   * A connection accepted on a listener: it becomes its task's, with the backend's id; when that
   * task has ended, it is reset (and its closing event swallowed).
   */
  #accept(
    event: Extract<NetEvent, { kind: "tcp-accept" }>,
  ): { readonly record: TaskRecord; readonly event: NetEvent } | undefined {
    const listener = this.#listeners.routes[event.listener];
    const record = listener?.record;
    const dead =
      listener === undefined || listener.detached || record === undefined || !record.alive;
    const route: Route = {
      record: record ?? (null as unknown as TaskRecord),
      local: event.conn,
      detached: dead,
      closing: dead,
    };
    this.#accepted.set(event.conn, route);
    if (dead || record === undefined) {
      this.staleDrops++;
      this.followUps.push({
        owner: record?.address.id ?? 0,
        action: { kind: "tcp-abort", conn: event.conn },
      });
      return undefined;
    }
    record.conns.set(event.conn, event.conn);
    const out = this.#inbound;
    out.record = record;
    out.event = { ...event, listener: (listener as Route).local };
    return out;
  }

  /** The route of an event, and how to free its id when the event closes it. */
  #route(event: NetEvent): { route: Route | undefined; free: (() => void) | undefined } {
    if ("socket" in event) {
      const id = event.socket;
      const closing = event.kind === "udp-closed";
      return {
        route: this.#sockets.routes[id],
        free: closing ? () => this.#sockets.free(id) : undefined,
      };
    }
    if ("device" in event) {
      const id = event.device;
      return {
        route: this.#devices.routes[id],
        free: event.kind === "tun-unbound" ? () => this.#devices.free(id) : undefined,
      };
    }
    if ("listener" in event) {
      const id = event.listener;
      return {
        route: this.#listeners.routes[id],
        free: event.kind === "tcp-unlistened" ? () => this.#listeners.free(id) : undefined,
      };
    }
    const id = event.conn;
    const closing =
      event.kind === "tcp-closed" ||
      (event.kind === "tcp-connect-result" && event.error !== undefined);
    const route = this.#connRoute(id);
    if (!closing || route === undefined) return { route, free: undefined };
    return {
      route,
      free: () => {
        if (id < 0) this.#accepted.delete(id);
        else this.#conns.free(id);
      },
    };
  }

  /** The task's map that holds the id of `event`'s socket, device, listener or connection. */
  #owned(event: NetEvent, record: TaskRecord): Map<number, number> {
    if ("socket" in event) return record.sockets;
    if ("device" in event) return record.devices;
    if ("listener" in event) return record.listeners;
    return record.conns;
  }

  /** The worker-wide id `event` is about. */
  #globalId(event: NetEvent): number {
    if ("socket" in event) return event.socket;
    if ("device" in event) return event.device;
    if ("listener" in event) return event.listener;
    return event.conn;
  }

  #connRoute(id: number): Route | undefined {
    return id < 0 ? this.#accepted.get(id) : this.#conns.routes[id];
  }

  /** Gives `event` to task `r` instead of carrying out its action; returns undefined. */
  #refused(r: TaskRecord, event: NetEvent): undefined {
    this.#refuse(r, event);
    return undefined;
  }

  /** `event` with the task's id `local` instead of the worker-wide `id`. */
  #local(event: NetEvent, local: number): NetEvent {
    switch (event.kind) {
      case "udp-packet": {
        const p = this.#packet;
        p.socket = local;
        p.from = event.from;
        p.data = event.data;
        p.size = event.size;
        p.truncated = event.truncated;
        return p;
      }
      case "tun-packet": {
        const p = this.#tunPacket;
        p.device = local;
        p.data = event.data;
        p.size = event.size;
        p.truncated = event.truncated;
        return p;
      }
      case "udp-listen-result":
        if (event.error !== undefined) this.#failedOpen(event.socket, true, local);
        return { ...event, socket: local };
      case "tun-bind-result":
        if (event.error !== undefined) this.#failedOpen(event.device, false, local);
        return { ...event, device: local };
      case "udp-send-error":
      case "udp-closed":
        return { ...event, socket: local };
      case "tun-send-error":
      case "tun-unbound":
        return { ...event, device: local };
      case "tcp-data": {
        const d = this.#tcpData;
        d.conn = local;
        d.data = event.data;
        return d;
      }
      case "tcp-listen-result":
        if (event.error !== undefined) this.#failedListen(event.listener, local);
        return { ...event, listener: local };
      case "tcp-unlistened":
        return { ...event, listener: local };
      case "tcp-accept":
        return event; // routed by #accept
      default:
        return { ...event, conn: local };
    }
  }

  /** A `tcp-listen` failed: as `#failedOpen`, for listener ids. */
  #failedListen(id: number, local: number): void {
    const route = this.#listeners.routes[id] as Route;
    route.detached = true;
    route.closing = true;
    if (route.record.listeners.get(local) === id) route.record.listeners.delete(local);
    this.followUps.push({
      owner: route.record.address.id,
      action: { kind: "tcp-unlisten", listener: id },
    });
  }

  /**
   * An open failed: the task may reuse its id at once; the worker-wide id is closed (a no-op for
   * the backend, whose closing event then frees it), so no late event can reach another task.
   */
  #failedOpen(id: number, socket: boolean, local: number): void {
    const table = socket ? this.#sockets : this.#devices;
    const route = table.routes[id] as Route;
    route.detached = true;
    route.closing = true;
    const owned = socket ? route.record.sockets : route.record.devices;
    if (owned.get(local) === id) owned.delete(local);
    const owner = route.record.address.id;
    this.followUps.push({
      owner,
      action: socket ? { kind: "udp-unlisten", socket: id } : { kind: "tun-unbind", device: id },
    });
  }

  /** Marks `id` closing; true when it already was (its close is under way). */
  #startClose(table: IdTable, id: number): boolean {
    const route = table.routes[id] as Route;
    if (route.closing) return true;
    route.closing = true;
    return false;
  }

  #noSocket(r: TaskRecord, local: number): undefined {
    this.#refuse(r, { kind: "udp-send-error", socket: local, error: socketNotOpen(local) });
    return undefined;
  }

  #noDevice(r: TaskRecord, local: number): undefined {
    this.#refuse(r, { kind: "tun-send-error", device: local, error: deviceNotBound(local) });
    return undefined;
  }
}
